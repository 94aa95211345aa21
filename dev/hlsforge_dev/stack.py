"""`make dev`: the whole product on one machine, on loopback, with no Docker.

Starts an emulated Kubernetes API with the Job runner (real `hlsforge-worker` processes), an
S3 server (moto), a MongoDB-compatible server (SecantusDB, data under `--data-dir`), a Redis,
the operator and the API with the web app; creates a demo user, prints the URL, and stops
everything on Ctrl-C. `--kubeconfig`, `--s3-endpoint` and `--mongodb-uri` point a part at a
real one instead, which is how the same binaries run in a cluster.

`--replicas N` runs N API processes behind a round-robin balancer on `--port` (Socket.IO
events cross them through Redis) and N operators, each named (`operator-1`, ...) in its log
and in the Lease they elect the active one with: kill one and watch the others carry on.
"""

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import httpx
from moto.server import ThreadedMotoServer

from hlsforge_dev import ranged_reads
from hlsforge_dev.balancer import round_robin
from hlsforge_dev.cluster import SECRETS, EmulatedCluster
from hlsforge_dev.jobs import JobRunner
from hlsforge_dev.loopback import free_port, redis_command, secantus_command, wait_for_port

NAMESPACE = "default"
CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / "videotranscodes.hlsforge.dev.yaml"
BUCKETS = ("uploads", "media")
S3_KEYS = {"AWS_ACCESS_KEY_ID": "hlsforge", "AWS_SECRET_ACCESS_KEY": "hlsforge-dev-only",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
DEMO_EMAIL, DEMO_PASSWORD = "demo@hlsforge.dev", "hlsforge-demo"
BIN = Path(sys.executable).parent


def wait_until(check: Any, what: str, timeout: float = 60) -> Any:
    """What `check()` returns once it is true (an exception counts as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if value := check():
                return value
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


@dataclass(frozen=True)
class Child:
    """A process of the stack: its name (its log is `<name>.log`), its PID and, for an API
    process, its own URL (the balancer's backend)."""

    name: str
    pid: int
    url: str | None = None


@dataclass(frozen=True)
class Running:
    """The stack, up: where the web app and API answer (the balancer, with replicas), the
    operators' token for the API's `/internal` namespace, the logs and the processes."""

    url: str
    service_token: str
    logs: Path
    apis: list[Child]
    operators: list[Child]


@contextlib.contextmanager
def process(
    name: str, args: list[str], env: dict[str, str], log_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group, logging to `<log_dir>/<name>.log`; on exit SIGINT,
    then SIGKILL for the whole group, so no worker outlives the stack. A child that exited
    by itself is an error; one killed by a signal was meant to be (`--replicas`)."""
    log = (log_dir / f"{name}.log").open("ab")
    child = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)  # fmt: skip
    try:
        yield child
        if child.poll() is not None and child.returncode >= 0:
            raise RuntimeError(f"{name} exited with {child.returncode}; see {log.name}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGINT)
        try:
            child.wait(timeout=8)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        log.close()


@contextlib.contextmanager
def mongodb(uri: str | None, data_dir: Path, log_dir: Path) -> Iterator[str]:
    if uri:
        yield uri
        return
    port = free_port()
    (data_dir / "mongo").mkdir(parents=True, exist_ok=True)
    args = secantus_command(port, str(data_dir / "mongo"))
    with process("mongodb", args, dict(os.environ), log_dir):
        wait_for_port(port)
        yield f"mongodb://127.0.0.1:{port}/"


@contextlib.contextmanager
def s3(endpoint: str | None, port: int) -> Iterator[tuple[str, dict[str, str]]]:
    """(endpoint, AWS_* credentials). A real endpoint uses the environment's credentials and
    its buckets must exist; moto keeps objects in memory, for as long as the stack runs."""
    if endpoint is not None:
        keys = {k: os.environ[k] for k in S3_KEYS if k in os.environ}
        if "AWS_ACCESS_KEY_ID" not in keys or "AWS_SECRET_ACCESS_KEY" not in keys:
            raise SystemExit("--s3-endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        yield endpoint, keys
        return
    ranged_reads.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
    for bucket in BUCKETS:
        client.create_bucket(Bucket=bucket)
    try:
        yield endpoint, S3_KEYS
    finally:
        server.stop()


@contextlib.contextmanager
def kubernetes(
    kubeconfig: Path | None, data_dir: Path, max_parallel: int, s3_keys: dict[str, str],
    worker_env: dict[str, str],
) -> Iterator[Path]:  # fmt: skip
    if kubeconfig is not None:
        yield kubeconfig
        return
    with EmulatedCluster() as cluster:
        cluster.apply_crds(CRD_FILE)  # as the chart installs it: its CEL rules hold here too
        cluster.create(SECRETS, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hlsforge-s3"},
            "stringData": {"accessKeyId": s3_keys["AWS_ACCESS_KEY_ID"],
                           "secretAccessKey": s3_keys["AWS_SECRET_ACCESS_KEY"]},
        }, namespace=NAMESPACE)  # fmt: skip
        region = s3_keys.get("AWS_DEFAULT_REGION", "us-east-1")
        env = {**os.environ, "AWS_DEFAULT_REGION": region, **worker_env}
        with JobRunner(cluster, env=env, max_parallel=max_parallel,
                       scratch_root=data_dir / "pods"):  # fmt: skip
            yield cluster.write_kubeconfig(data_dir / "kubeconfig")


@contextlib.contextmanager
def redis(log_dir: Path) -> Iterator[str]:
    """Socket.IO's pub/sub between API processes (used with one, too, as in a cluster)."""
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed: run `make system-deps`")
    port = free_port()
    with process("redis", redis_command(port), dict(os.environ), log_dir):
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"


def create_demo_user(api_url: str) -> None:
    account = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "name": "Demo"}
    response = httpx.post(f"{api_url}/api/v1/auth/register", json=account, timeout=10)
    if response.status_code not in (201, 409):  # 409: kept from an earlier run
        raise RuntimeError(f"could not create the demo user: {response.text}")


def replica_names(kind: str, replicas: int) -> list[str]:
    """`api` for one (today's log names), else `api-1`, `api-2`, ..."""
    return [kind] if replicas == 1 else [f"{kind}-{i}" for i in range(1, replicas + 1)]


@contextlib.contextmanager
def api_processes(
    host: str, port: int, replicas: int, env: dict[str, str], log_dir: Path
) -> Iterator[list[Child]]:
    """One API on `port`, or `replicas` on free ports behind a round-robin balancer on `port`
    (stopped before them)."""
    names = replica_names("api", replicas)
    ports = [port] if replicas == 1 else [free_port() for _ in names]
    with contextlib.ExitStack() as running:
        apis = []
        for name, api_port in zip(names, ports, strict=True):
            args = [str(BIN / "hlsforge-api"), "--host", host, "--port", str(api_port)]
            child = running.enter_context(process(name, args, env, log_dir))
            apis.append(Child(name, child.pid, f"http://{host}:{api_port}"))
        if replicas > 1:
            running.enter_context(round_robin(host, port, [(host, p) for p in ports]))
        yield apis


@contextlib.contextmanager
def operator_processes(
    replicas: int, env: dict[str, str], log_dir: Path
) -> Iterator[list[Child]]:  # fmt: skip
    """`replicas` operators, each with its own liveness and metrics ports, and named in the
    Lease they elect the active one with as in its log."""
    with contextlib.ExitStack() as running:
        operators = []
        for name in replica_names("operator", replicas):
            own = {"HLSFORGE_LIVENESS_PORT": str(free_port()),
                   "HLSFORGE_METRICS_PORT": str(free_port()),
                   "HLSFORGE_LEASE__IDENTITY": name}  # fmt: skip
            args = [str(BIN / "hlsforge-operator")]
            child = running.enter_context(process(name, args, env | own, log_dir))
            operators.append(Child(name, child.pid))
        yield operators


@contextlib.contextmanager
def stack(
    *, data_dir: Path, host: str = "127.0.0.1", port: int = 8000, s3_port: int = 9000,
    max_parallel: int = 2, kubeconfig: Path | None = None, s3_endpoint: str | None = None,
    mongodb_uri: str | None = None, worker_env: dict[str, str] | None = None, replicas: int = 1,
) -> Iterator[Running]:  # fmt: skip
    """Everything up and ready. `worker_env` is added to the environment of the emulated
    cluster's worker processes. `replicas`: API processes (behind a balancer when more than
    one) and operators."""
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    data_dir = data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    api_url = f"http://{host}:{port}"
    service_token = secrets.token_urlsafe(32)
    with (
        mongodb(mongodb_uri, data_dir, logs) as mongodb_url,
        redis(logs) as redis_url,
        s3(s3_endpoint, s3_port) as (s3_url, s3_keys),
        kubernetes(
            kubeconfig, data_dir, max_parallel, s3_keys, worker_env or {}
        ) as kubeconfig_path,
    ):
        common = {**os.environ, **s3_keys, "AWS_ENDPOINT_URL": s3_url,
                  "KUBECONFIG": str(kubeconfig_path), "HLSFORGE_MONGODB_URI": mongodb_url,
                  "HLSFORGE_SERVICE_TOKEN": service_token}  # fmt: skip
        operator_env = common | {
            "HLSFORGE_NAMESPACES": f'["{NAMESPACE}"]',
            "HLSFORGE_API_URL": api_url,  # the balancer, with replicas: any API will do
            "HLSFORGE_JOB__S3_ENDPOINT_URL": s3_url,
            "HLSFORGE_MAX_RUNNING_JOBS": str(max_parallel),
        }
        api_env = common | {
            "HLSFORGE_JWT_SECRET": _jwt_secret(data_dir),
            "HLSFORGE_S3_ENDPOINT_URL": s3_url,
            "HLSFORGE_NAMESPACE": NAMESPACE,
            "HLSFORGE_KUBECONFIG": str(kubeconfig_path),
            "HLSFORGE_REDIS_URL": redis_url,
        }
        with (
            api_processes(host, port, replicas, api_env, logs) as apis,
            operator_processes(replicas, operator_env, logs) as operators,
        ):
            for api in apis:
                wait_until(partial(_ready, f"{api.url}/readyz"), api.name)
            create_demo_user(api_url)
            yield Running(api_url, service_token, logs, apis, operators)


def _ready(readyz: str) -> bool:
    return httpx.get(readyz).status_code == 200


def _jwt_secret(data_dir: Path) -> str:
    """Kept in the data directory, so sign-ins survive a restart (MongoDB does too)."""
    path = data_dir / "jwt-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def banner(running: Running, kubeconfig: Path) -> str:
    url = running.url
    lines = [f"\nhlsforge is running: {url}",
             f"  sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}",
             f"  API docs {url}/docs; logs in {running.logs}",
             f"  kubectl: export KUBECONFIG={kubeconfig}"]  # fmt: skip
    if len(running.apis) > 1:
        lines.append(f"  {len(running.apis)} API processes behind a round-robin balancer on {url}"
                     f", and {len(running.operators)} operators:")  # fmt: skip
        for child in running.apis + running.operators:
            where = child.url.removeprefix("http://") if child.url else ""
            lines.append(f"    {child.name:<12} PID {child.pid:<8} {where:<16} {child.name}.log")
        lines.append("  The active operator holds the Lease (kubectl get lease hlsforge-operator); "
                     "kill one (kill -9 PID) and watch the others carry on.")  # fmt: skip
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m hlsforge_dev.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="the API and web app (or balancer)")
    parser.add_argument("--s3-port", type=int, default=9000, help="the emulated S3")
    parser.add_argument("--data-dir", type=Path, default=Path("out/dev"))
    parser.add_argument("--max-parallel", type=int, default=2, help="transcoder pods at once")
    parser.add_argument("--kubeconfig", type=Path, help="a real cluster instead of the emulator")
    parser.add_argument("--s3-endpoint", help="a real S3 instead of moto (AWS_* credentials)")
    parser.add_argument("--mongodb-uri", help="a real MongoDB instead of SecantusDB")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="API processes (behind a round-robin balancer), and operators",
    )
    args = parser.parse_args()
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    options = {k: v for k, v in vars(args).items() if v is not None}
    kubeconfig = args.kubeconfig or args.data_dir / "kubeconfig"
    with stack(**options) as running:
        print(banner(running, kubeconfig.resolve()), flush=True)
        stop.wait()
    print("hlsforge stopped.", flush=True)


if __name__ == "__main__":
    main()
