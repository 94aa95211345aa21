"""API benchmark: `hlsforge-api` (one uvicorn worker, its own process) against SecantusDB (its
own process), moto S3 and the emulated Kubernetes API (threads of this process); then the
same with two API processes on one Redis (issue 13), side by side.

  (1) HTTP: requests/s and p50/p99 latency under --workers concurrent keep-alive workers
      (asyncio in this process: aiohttp, or httpx.AsyncClient with --http-client httpx, which
      costs several times the CPU per request), --seconds each after a 1 s warm-up, for
        GET /healthz             the baseline: no auth, no I/O
        GET /api/v1/auth/me      token check + one MongoDB read
        POST /api/v1/videos      token check, 3 MongoDB round trips and a presigned POST
      each worker signed in as its own user; ratios against /healthz, and the CPU each process
      used (% of one core) to show what limits the figure.
  (2) Socket.IO fan-out: --events `transcode.progress` events sent on `/internal` (the
      operator's namespace, from this process), each relayed to --clients python-socketio
      AsyncClients (websocket transport, in a separate process) all in one owner's room
      `user:<id>`; delivery latency = receive time - send time over every client and event.
      The baseline is the same with 10 clients. With two replicas the clients connect to
      them in turn and the events arrive at the first, so half of every fan-out goes through
      Redis, as behind a round-robin Service.

Both Python processes of the fan-out (the API and the clients) spend about the same CPU per
event, so either can bound it. An event now and then takes 3-5x the median, which sets the
p99: with the clients' garbage collector off (a test, not a setting) those stalls remained
(~240 ms); with the API's off as well they went away, so they are mostly the API process's
gen-2 collections over the 1000 sockets' objects. The clients' longest GC pause is printed.

    .venv/bin/python bench/api.py [--workers 32] [--seconds 10] [--http-client aiohttp]
                                  [--clients 1000] [--events 20]
"""

import argparse
import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import httpx
import socketio
from hlsforge_dev import SECRETS, EmulatedCluster
from hlsforge_dev.loopback import free_port, redis_server, secantus_command, wait_for_port
from moto.server import ThreadedMotoServer

from videotranscode import TranscodeEvent

NAMESPACE = "default"
PASSWORD = "bench password 1"
BASELINE_CLIENTS = 10
CONNECT_CONCURRENCY = 100
EVENT_TIMEOUT = 30.0  # seconds for one event to reach every client
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROGRESS = TranscodeEvent.PROGRESS.value


def now() -> float:
    """CLOCK_MONOTONIC: one clock for every process on the machine (Linux)."""
    return time.monotonic()


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


class CpuMeter:
    """CPU used by some processes over an interval, as % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.started = now()

    def percent(self) -> dict[str, float]:
        wall = now() - self.started
        return {name: 100 * (cpu_seconds(pid) - self.start[name]) / wall
                for name, pid in self.pids.items()}  # fmt: skip

    def seconds(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}


def api_pids(svc: "Services") -> dict[str, int]:
    """The API replicas' pids, named api, api-2, ... (`api_cpu` adds them up)."""
    return {("api" if i == 0 else f"api-{i + 1}"): pid for i, pid in enumerate(svc.api_pids)}


def api_cpu(measured: dict[str, float]) -> float:
    return sum(value for name, value in measured.items() if name.startswith("api"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- the services -----------------------------------------------------------------------------


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str] | None = None) -> Iterator[int]:
    """A child process (its pid), terminated on exit."""
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield child.pid
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def binary(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@dataclass
class Services:
    urls: list[str]  # one per API replica
    service_token: str
    api_pids: list[int]
    mongo_pid: int

    @property
    def url(self) -> str:
        return self.urls[0]


@contextlib.contextmanager
def services(tmp: Path, replicas: int) -> Iterator[Services]:
    """SecantusDB, moto, the emulated cluster and `replicas` API processes (on one Redis when
    more than one); yields once every API is ready."""
    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3_server.start()
    host, s3_port = s3_server.get_host_and_port()
    s3_endpoint = f"http://{host}:{s3_port}"
    aws = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
    for bucket in ("uploads", "media"):
        s3.create_bucket(Bucket=bucket)
    mongo_port = free_port()
    mongo = secantus_command(mongo_port)
    service_token = secrets.token_urlsafe(32)
    try:
        with (
            EmulatedCluster() as cluster,
            process(mongo) as mongo_pid,
            contextlib.ExitStack() as apis,
        ):
            cluster.create(SECRETS, {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hlsforge-s3"},
                "stringData": {"accessKeyId": "bench", "secretAccessKey": "bench"},
            }, namespace=NAMESPACE)  # fmt: skip
            wait_for_port(mongo_port)
            env = {
                **os.environ, **aws,
                "HLSFORGE_JWT_SECRET": secrets.token_urlsafe(32),
                "HLSFORGE_SERVICE_TOKEN": service_token,
                "HLSFORGE_MONGODB_URI": f"mongodb://127.0.0.1:{mongo_port}/",
                "HLSFORGE_MONGODB_DATABASE": "bench",
                "HLSFORGE_S3_ENDPOINT_URL": s3_endpoint,
                "HLSFORGE_KUBECONFIG": str(cluster.write_kubeconfig(tmp / "kubeconfig")),
                "HLSFORGE_NAMESPACE": NAMESPACE,
                "HLSFORGE_LOG_LEVEL": "WARNING",
                "HLSFORGE_MAX_PENDING_UPLOADS": "100000000",
                "HLSFORGE_REGISTRATIONS_PER_ADDRESS": "100000000",  # every worker signs up
            }  # fmt: skip
            if replicas > 1:
                env["HLSFORGE_REDIS_URL"] = apis.enter_context(redis_server())
            urls, pids = [], []
            for _ in range(replicas):
                port = free_port()
                api = [binary("hlsforge-api"), "--host", "127.0.0.1", "--port", str(port)]
                pids.append(apis.enter_context(process(api, env)))
                urls.append(f"http://127.0.0.1:{port}")
            for url in urls:
                wait_until_ready(url)
            yield Services(urls, service_token, pids, mongo_pid)
    finally:
        s3_server.stop()


def wait_until_ready(url: str, timeout: float = 60) -> None:
    deadline = now() + timeout
    while now() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url}/readyz did not answer 200 within {timeout:.0f} s")


async def sign_up(client: httpx.AsyncClient, name: str) -> tuple[str, str]:
    """A new user: (its id, an access token)."""
    account = {"email": f"{name}@bench.example.com", "password": PASSWORD}
    (await client.post("/api/v1/auth/register", json=account)).raise_for_status()
    login = await client.post("/api/v1/auth/login", json=account)
    login.raise_for_status()
    token: str = login.json()["access_token"]
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    user_id: str = me.json()["id"]
    return user_id, token


# --- (1) HTTP under load ----------------------------------------------------------------------


@dataclass
class Endpoint:
    label: str
    method: str
    path: str
    expected: int
    body: Callable[[int], dict[str, Any]] | None = None


VIDEO_SIZE = 50_000_000  # below the multipart threshold: a presigned POST, no S3 call


def new_video(number: int) -> dict[str, Any]:
    return {"title": f"bench {number}", "filename": "clip.mp4", "contentType": "video/mp4",
            "size": VIDEO_SIZE}  # fmt: skip


ENDPOINTS = [
    Endpoint("GET /healthz", "GET", "/healthz", 200),
    Endpoint("GET /api/v1/auth/me", "GET", "/api/v1/auth/me", 200),
    Endpoint("POST /api/v1/videos", "POST", "/api/v1/videos", 201, new_video),
]


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]
    unexpected: Counter[int]
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


class LoadClients:
    """One keep-alive connection per worker. aiohttp shares one session; httpx gets an
    AsyncClient per worker, since one shared AsyncClient's pool costs about 4 ms of CPU per
    request at 32 concurrent (measured here: 235 req/s at 100 % CPU against a bare FastAPI
    /healthz that aiohttp drives at 3700 req/s using 50 %)."""

    def __init__(self, kind: str, url: str, workers: int) -> None:
        self.kind, self.url, self.workers = kind, url, workers
        self.stack = contextlib.AsyncExitStack()
        self.session: aiohttp.ClientSession | None = None
        self.clients: list[httpx.AsyncClient] = []

    async def __aenter__(self) -> "LoadClients":
        if self.kind == "aiohttp":
            connector = aiohttp.TCPConnector(limit=self.workers)
            self.session = await self.stack.enter_async_context(
                aiohttp.ClientSession(self.url, connector=connector)
            )
        else:
            self.clients = [
                await self.stack.enter_async_context(httpx.AsyncClient(base_url=self.url))
                for _ in range(self.workers)
            ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stack.aclose()

    async def send(self, worker: int, endpoint: Endpoint, token: str, number: int) -> int:
        """One request; its status code."""
        body = endpoint.body(number) if endpoint.body else None
        headers = {"Authorization": f"Bearer {token}"}
        if self.session is not None:
            async with self.session.request(endpoint.method, endpoint.path, json=body,
                                            headers=headers) as response:  # fmt: skip
                await response.read()
                return response.status
        reply = await self.clients[worker].request(endpoint.method, endpoint.path, json=body,
                                                   headers=headers)  # fmt: skip
        return reply.status_code


async def load(
    replicas: list[LoadClients], endpoint: Endpoint, tokens: list[str], seconds: float,
    meter_pids: dict[str, int] | None = None,
) -> LoadResult:  # fmt: skip
    """One worker per token, each sending one request after another for `seconds`, the
    workers spread over the replicas in turn."""
    latencies: list[float] = []
    unexpected: Counter[int] = Counter()
    deadline = now() + seconds

    async def worker(number: int, token: str) -> None:
        while (start := now()) < deadline:
            clients = replicas[number % len(replicas)]
            status = await clients.send(number // len(replicas), endpoint, token, len(latencies))
            latencies.append(now() - start)
            if status != endpoint.expected:
                unexpected[status] += 1

    meter = CpuMeter(meter_pids or {})
    started = now()
    await asyncio.gather(*(worker(number, token) for number, token in enumerate(tokens)))
    elapsed = now() - started
    return LoadResult(len(latencies), elapsed, latencies, unexpected, meter.percent())


async def http_benchmark(
    svc: Services, workers: int, seconds: float, client_kind: str
) -> dict[str, LoadResult]:
    async with httpx.AsyncClient(base_url=svc.url, timeout=60) as client:
        users = await asyncio.gather(*(sign_up(client, f"load-{i}") for i in range(workers)))
    tokens = [token for _, token in users]
    pids = {**api_pids(svc), "mongodb": svc.mongo_pid, "load": os.getpid()}
    results = {}
    per_replica = -(-workers // len(svc.urls))
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(LoadClients(client_kind, url, per_replica))
                   for url in svc.urls]  # fmt: skip
        for endpoint in ENDPOINTS:
            print(f"  {endpoint.label}: {seconds:g} s with {workers} workers …", flush=True)
            await load(clients, endpoint, tokens, 1.0)  # warm-up: connections, thread pool
            results[endpoint.label] = await load(clients, endpoint, tokens, seconds, pids)
    return results


def print_http(
    results: dict[str, LoadResult], workers: int, client_kind: str, replicas: int
) -> None:  # fmt: skip
    base = results[ENDPOINTS[0].label]
    base_p50 = statistics.median(base.latencies)
    print(f"\n(1) HTTP, {workers} concurrent keep-alive workers ({client_kind}), {replicas} "
          f"API replica(s) of one uvicorn worker each, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'endpoint':<24}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'vs healthz':>12}"
          f"{'p50 x':>7}   CPU % of a core: api / mongodb / load generator")  # fmt: skip
    for label, result in results.items():
        p50, p99 = statistics.median(result.latencies), percentile(result.latencies, 0.99)
        shares = (api_cpu(result.cpu), result.cpu["mongodb"], result.cpu["load"])
        cpu = " / ".join(f"{share:.0f}" for share in shares)
        extra = f"   unexpected statuses {dict(result.unexpected)}" if result.unexpected else ""
        print(f"{label:<24}{result.rate:>8.0f}{p50 * 1000:>8.1f}{p99 * 1000:>8.1f}"
              f"{result.rate / base.rate:>11.3f}x{p50 / base_p50:>7.1f}   {cpu}"
              f"{extra}")  # fmt: skip
    print(
        "mongodb is SecantusDB, a MongoDB-compatible server written in Python: where it is "
        "the busiest process, a real mongod would raise the figure. The api process runs "
        "sync routes in a thread pool, so it can be the limit below 100 % of a core."
    )


# --- (2) Socket.IO fan-out --------------------------------------------------------------------


def run_clients(
    urls: list[str], token: str, count: int, events: int, conn: Connection
) -> None:  # fmt: skip
    """The browsers' process: `count` clients, connected to the replicas in turn; reports each
    event once all have it."""
    raise_fd_limit()
    asyncio.run(clients_main(urls, token, count, events, conn))


async def clients_main(
    urls: list[str], token: str, count: int, events: int, conn: Connection
) -> None:  # fmt: skip
    latencies: list[list[float]] = [[] for _ in range(events)]

    async def on_progress(data: dict[str, Any]) -> None:
        received = now()
        seq = data["seq"]
        latencies[seq].append(received - data["sentAt"])
        if len(latencies[seq]) == count:
            conn.send(("delivered", seq))

    connector = aiohttp.TCPConnector(limit=0)  # one shared session; no cap on connections
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = [socketio.AsyncClient(reconnection=False, http_session=session)
                   for _ in range(count)]  # fmt: skip
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect(client: Any, url: str) -> None:
            client.on(PROGRESS, on_progress)
            async with gate:
                await client.connect(url, auth={"token": token}, transports=["websocket"],
                                     wait_timeout=60)  # fmt: skip

        started = now()
        await asyncio.gather(*(connect(client, urls[number % len(urls)])
                               for number, client in enumerate(clients)))  # fmt: skip
        conn.send(("ready", now() - started))
        pauses = GcPauses()
        cpu_before = cpu_seconds(os.getpid())
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        cpu = cpu_seconds(os.getpid()) - cpu_before
        gc.callbacks.remove(pauses.notice)
        conn.send(("latencies", latencies, cpu, pauses.longest))
        await asyncio.gather(*(client.disconnect() for client in clients))


class GcPauses:
    """The longest garbage-collector pause in this process, from now on."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.started = 0.0
        gc.callbacks.append(self.notice)

    def notice(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = now()
        else:
            self.longest = max(self.longest, now() - self.started)


@dataclass
class FanOut:
    clients: int
    connect_seconds: float
    latencies: list[float]  # every (client, event) delivery
    completions: list[float]  # per event: until its last client had it
    missing: int
    server_cpu: float  # seconds over all events
    client_cpu: float
    client_gc_pause: float  # the clients' process's longest garbage-collector pause


async def expect(conn: Connection, kind: str, timeout: float) -> tuple[Any, ...]:
    def receive() -> tuple[Any, ...]:
        if not conn.poll(timeout):
            raise TimeoutError(f"no {kind!r} from the clients' process within {timeout:.0f} s")
        message: tuple[Any, ...] = conn.recv()
        return message

    message = await asyncio.get_running_loop().run_in_executor(None, receive)
    assert message[0] == kind, message
    return message


async def fan_out(svc: Services, owner: str, token: str, video_id: str, *, clients: int,
                  events: int) -> FanOut:  # fmt: skip
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    browsers = context.Process(target=run_clients,
                               args=(svc.urls, token, clients, events, theirs))  # fmt: skip
    browsers.start()
    operator = socketio.AsyncClient(reconnection=False)
    try:
        (_, connect_seconds) = await expect(ours, "ready", 300)
        await operator.connect(svc.url, namespaces=["/internal"], transports=["websocket"],
                               auth={"token": svc.service_token}, wait_timeout=30)  # fmt: skip
        await asyncio.sleep(0.5)  # let the connections settle
        meter = CpuMeter(api_pids(svc))
        for seq in range(events):
            await operator.emit(PROGRESS, {
                "videoId": video_id, "owner": owner, "phase": "transcoding",
                "progress": round(100 * (seq + 1) / events, 1), "seq": seq, "sentAt": now(),
            }, namespace="/internal")  # fmt: skip
            with contextlib.suppress(TimeoutError):  # a lost delivery shows as `missing`
                await expect(ours, "delivered", EVENT_TIMEOUT)
            await asyncio.sleep(0.05)  # events are isolated: one fan-out at a time
        server_cpu = api_cpu(meter.seconds())
        ours.send(("stop",))
        _, per_event, client_cpu, gc_pause = await expect(ours, "latencies", 60)
    finally:
        await operator.disconnect()
        browsers.join(timeout=60)
        if browsers.is_alive():
            browsers.terminate()
    latencies = [latency for event in per_event for latency in event]
    completions = [max(event) for event in per_event if len(event) == clients]
    missing = clients * events - len(latencies)
    return FanOut(clients, connect_seconds, latencies, completions, missing, server_cpu,
                  client_cpu, gc_pause)  # fmt: skip


async def socketio_benchmark(svc: Services, clients: int, events: int) -> list[FanOut]:
    async with httpx.AsyncClient(base_url=svc.url, timeout=60) as client:
        owner, token = await sign_up(client, "watcher")
        created = await client.post("/api/v1/videos", json=new_video(0),
                                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        video_id: str = created.json()["video"]["id"]
    results = []
    for count in (BASELINE_CLIENTS, clients):
        print(f"  {count} clients: connecting, then {events} events …", flush=True)
        results.append(await fan_out(svc, owner, token, video_id, clients=count, events=events))
    return results


def print_fan_out(results: list[FanOut], events: int, replicas: int) -> None:
    base = results[0]
    print(f"\n(2) Socket.IO fan-out of transcode.progress from /internal to N clients, all in "
          f"one owner's room (user:<id>), {events} events one at a time, {replicas} API "
          f"replica(s); ms")  # fmt: skip
    print(f"{'clients':>8}{'p50':>8}{'p99':>8}{'max':>8}{'last p50':>10}{'p99 x':>7}"
          f"{'server CPU/ev':>15}{'client CPU/ev':>15}{'connect s':>11}{'missing':>9}")  # fmt: skip
    for result in results:
        lat = result.latencies
        p50, p99, worst = statistics.median(lat), percentile(lat, 0.99), max(lat)
        last = statistics.median(result.completions) if result.completions else float("nan")
        ratio = p99 / percentile(base.latencies, 0.99)
        print(f"{result.clients:>8}{p50 * 1000:>8.1f}{p99 * 1000:>8.1f}{worst * 1000:>8.1f}"
              f"{last * 1000:>10.1f}{ratio:>6.1f}x{result.server_cpu / events * 1000:>15.1f}"
              f"{result.client_cpu / events * 1000:>15.1f}{result.connect_seconds:>11.1f}"
              f"{result.missing:>9}")  # fmt: skip
    big = results[-1]
    server, client = big.server_cpu / events * 1000, big.client_cpu / events * 1000
    if big.server_cpu + big.client_cpu < 0.2:
        bound = "too little CPU to tell (it is counted in 10 ms ticks)"
    elif max(server, client) <= 1.25 * min(server, client):
        bound = "about the same: the server's sends and the clients' receives both bound it"
    else:
        bound = f"the {'clients' if client > server else 'server'} side bounds it"
    print(f"latency = receive - send per (client, event); 'last' = until an event's last client "
          f"had it; CPU/ev = CPU ms per event of the api process and of the clients' process "
          f"(one Python event loop each; {os.cpu_count()} cores in all).")  # fmt: skip
    print(f"With {big.clients} clients: server {server:.0f} ms, clients {client:.0f} ms of CPU "
          f"per event, {bound}.")  # fmt: skip
    if big.completions:
        typical, longest = statistics.median(big.completions), max(big.completions)
        slow = [c for c in big.completions if c > 2 * typical]
        where = ""
        if slow and big.client_gc_pause < longest - typical:
            where = ", shorter than that stall: the server side stalled (see the docstring)"
        print(f"{len(slow)} of {len(big.completions)} events took over twice the median 'last' "
              f"(longest {longest * 1000:.0f} ms); the clients' process's longest GC pause was "
              f"{big.client_gc_pause * 1000:.0f} ms{where}.")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=32, help="concurrent HTTP workers")
    parser.add_argument("--seconds", type=float, default=10, help="per HTTP endpoint")
    parser.add_argument(
        "--http-client",
        choices=["aiohttp", "httpx"],
        default="aiohttp",
        help="the load generator's HTTP client (httpx costs more CPU)",
    )
    parser.add_argument("--clients", type=int, default=1000, help="Socket.IO clients")
    parser.add_argument("--events", type=int, default=20, help="progress events sent")
    parser.add_argument("--replicas", default="1,2", help="API replica counts, comma-separated")
    options = parser.parse_args()
    counts = [int(count) for count in options.replicas.split(",")]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    limit = raise_fd_limit()
    if limit < options.clients + 100:
        sys.exit(f"the open-file limit ({limit}) is too low for {options.clients} clients")

    measured: dict[int, tuple[dict[str, LoadResult], list[FanOut]]] = {}
    for replicas in counts:
        with tempfile.TemporaryDirectory(prefix="hlsforge-bench-") as tmp:
            print(f"starting SecantusDB, moto, the emulated cluster and {replicas} "
                  "hlsforge-api …", flush=True)  # fmt: skip
            with services(Path(tmp), replicas) as svc:
                http = asyncio.run(
                    http_benchmark(svc, options.workers, options.seconds, options.http_client)
                )
                fan = asyncio.run(socketio_benchmark(svc, options.clients, options.events))
        measured[replicas] = (http, fan)
    for replicas, (http, fan) in measured.items():
        print_http(http, options.workers, options.http_client, replicas)
        print_fan_out(fan, options.events, replicas)
    if len(measured) > 1:
        print_side_by_side(measured, options.clients)


def print_side_by_side(
    measured: dict[int, tuple[dict[str, LoadResult], list[FanOut]]], clients: int
) -> None:
    """Each replica count against the first, on the figures issue 13 asks for."""
    counts = list(measured)
    labels = ["POST /api/v1/videos req/s", f"fan-out to {clients} clients p50 ms",
              f"fan-out to {clients} clients p99 ms"]  # fmt: skip
    rows: dict[str, list[float]] = {label: [] for label in labels}
    for count in counts:
        http, fan = measured[count]
        latencies = fan[-1].latencies
        measures = (http["POST /api/v1/videos"].rate, statistics.median(latencies) * 1000,
                    percentile(latencies, 0.99) * 1000)  # fmt: skip
        for row, value in zip(rows.values(), measures, strict=True):
            row.append(value)
    print(f"\n(3) Side by side: {', '.join(f'{c} replica(s)' for c in counts)}; ratio against "
          f"{counts[0]} ({os.cpu_count()} CPUs for every process of the bench)")  # fmt: skip
    for label, values in rows.items():
        figures = "".join(f"{value:>10.1f}" for value in values)
        ratios = "".join(f"{value / values[0]:>8.2f}x" for value in values[1:])
        print(f"{label:<34}{figures}{ratios}")


if __name__ == "__main__":
    main()
