"""`make dev`: the whole stack as one command that serves and stops cleanly on Ctrl-C; with
`--replicas 2`, two API processes behind the balancer, either of which may be killed."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import socketio
from conftest import ClipFactory
from helpers import create_and_upload
from hlsforge_dev.loopback import free_port
from hlsforge_dev.stack import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    Child,
    Running,
    banner,
    kubernetes,
    stack,
    wait_until,
)
from kubernetes import client as kube_client
from kubernetes import config as kube_config

ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found


def test_make_dev_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "dev"
    args = f"--port {port} --s3-port {free_port()} --data-dir {data_dir}"
    make = subprocess.Popen(["make", "--no-print-directory", "dev", f"DEV_ARGS={args}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        account = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
        while True:  # ready once the demo user can sign in: the last step of the start
            assert make.poll() is None, make.communicate()[0]
            assert time.monotonic() < deadline, "make dev did not come up"
            try:
                if httpx.post(f"{url}/api/v1/auth/login", json=account).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").json()["status"] == "ok"
    finally:
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        started = time.monotonic()
        output, _ = make.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    assert f"hlsforge is running: {url}" in output
    assert "hlsforge stopped." in output
    assert stopped_in < 15, output
    assert processes_mentioning(str(data_dir)) == []
    assert processes_mentioning(f"--port {port}") == []
    assert (data_dir / "mongo").is_dir()  # the data stays for the next start


def test_make_devs_cluster_refuses_spec_edits_as_the_crd_says(tmp_path: Path) -> None:
    """`make dev` applies the CRD, as the chart does: `kubectl` edits of a running spec get
    the CEL rule's message there too (before, they reached the operator's fallback)."""
    kubectl = shutil.which("kubectl", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    assert kubectl is not None, "kubectl is not installed: run `make setup`"
    keys = {"AWS_ACCESS_KEY_ID": "dev", "AWS_SECRET_ACCESS_KEY": "dev"}
    with kubernetes(None, tmp_path, 1, keys, {}) as kubeconfig:

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            command = [kubectl, "--kubeconfig", str(kubeconfig), *args]
            return subprocess.run(command, capture_output=True, text=True, check=False)

        example = ROOT / "examples" / "videotranscode.yaml"
        assert run("apply", "--validate=false", "-f", str(example)).returncode == 0
        edit = run("patch", "vt", "example", "--type=merge", "-p", '{"spec":{"segmentSeconds":4}}')
        assert edit.returncode != 0
        assert "spec is immutable: delete and create a new VideoTranscode" in edit.stderr
        priority = run("patch", "vt", "example", "--type=merge", "-p", '{"spec":{"priority":9}}')
        assert priority.returncode == 0, priority.stderr


def sign_in(url: str) -> str:
    account = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    response = httpx.post(f"{url}/api/v1/auth/login", json=account, timeout=10)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def send_like_the_operator(api: Child, running: Running, payload: dict[str, Any]) -> None:
    """A progress event into one API process's `/internal` namespace, straight to it."""
    assert api.url is not None
    operator = socketio.SimpleClient()
    operator.connect(api.url, auth={"token": running.service_token}, transports=["websocket"],
                     namespace="/internal", wait_timeout=10)  # fmt: skip
    try:
        operator.call("transcode.progress", payload, timeout=10)  # acknowledged once relayed
    finally:
        operator.disconnect()


def refuses_connections(api: Child) -> bool:
    assert api.url is not None
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", int(api.url.rsplit(":", 1)[1]))) != 0


def lease_holder(kubeconfig: Path) -> str | None:
    client = kube_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    with client:
        api: Any = kube_client.CustomObjectsApi(client)
        lease = api.get_namespaced_custom_object(
            "coordination.k8s.io", "v1", "default", "leases", "hlsforge-operator"
        )
    holder: str | None = lease["spec"].get("holderIdentity")
    return holder


def test_with_two_replicas_either_api_serves_events_cross_and_a_killed_one_is_not_missed(
    tmp_path: Path, clip: ClipFactory
) -> None:
    data_dir = tmp_path / "dev"
    with stack(data_dir=data_dir, port=free_port(), s3_port=free_port(), replicas=2) as running:
        api_1, api_2 = running.apis
        text = banner(running, data_dir / "kubeconfig")
        for child in running.apis + running.operators:
            assert f"PID {child.pid}" in text
            assert f"{child.name}.log" in text

        # Through the balancer, one connection each (httpx.get keeps none): both APIs answer.
        probes = {f"probe-{uuid.uuid4().hex[:8]}-{i}" for i in range(6)}
        for probe in probes:
            response = httpx.get(f"{running.url}/healthz", headers={"X-Request-ID": probe})
            assert response.status_code == 200

        def served_by(api: Child) -> set[str]:
            log = (running.logs / f"{api.name}.log").read_text()
            return {probe for probe in probes if probe in log}  # the access log's requestId

        wait_until(lambda: served_by(api_1) | served_by(api_2) == probes, "the access logs", 10)
        assert served_by(api_1)
        assert served_by(api_2)

        # A browser through the balancer is on one API; an event sent to each API reaches it
        # (one from its own API, one through Redis from the other).
        token = sign_in(running.url)
        me = httpx.get(
            f"{running.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        browser = socketio.SimpleClient()
        browser.connect(running.url, auth={"token": token}, transports=["websocket"],
                        wait_timeout=10)  # fmt: skip
        try:
            for api in running.apis:
                send_like_the_operator(api, running, {
                    "videoId": uuid.uuid4().hex[:24], "owner": me.json()["id"],
                    "rendition": api.name, "percent": 50.0,
                })  # fmt: skip
            received = [browser.receive(timeout=10) for _ in running.apis]
        finally:
            browser.disconnect()
        assert sorted(data["rendition"] for _, data in received) == ["api-1", "api-2"]

        # kill -9 one API: sign-in and the list go on through the balancer, on every turn.
        os.kill(api_1.pid, signal.SIGKILL)
        wait_until(lambda: refuses_connections(api_1), "the killed API's port to close", 10)
        for _ in range(4):
            token = sign_in(running.url)
            videos = httpx.get(f"{running.url}/api/v1/videos",
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert videos.status_code == 200, videos.text

        # kill -9 the active operator: the standby takes the Lease and transcodes an upload.
        holder = wait_until(lambda: lease_holder(data_dir / "kubeconfig"), "a lease holder", 30)
        active = next(o for o in running.operators if o.name == holder)
        os.kill(active.pid, signal.SIGKILL)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=running.url, headers=auth, timeout=10) as client:
            video_id = create_and_upload(client, clip("trip.mp4", size="320x180", seconds=1))
            assert client.post(f"/api/v1/videos/{video_id}/complete").status_code == 202

            def finished() -> Any:
                phase = client.get(f"/api/v1/videos/{video_id}").json()["phase"]
                return phase if phase in ("succeeded", "failed") else None

            assert wait_until(finished, "the transcode", 120) == "succeeded"
        assert lease_holder(data_dir / "kubeconfig") not in (None, holder)
    assert processes_mentioning(str(data_dir)) == []  # the stack stopped the rest
