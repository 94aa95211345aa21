"""`make dev`: the whole stack as one command that serves and stops cleanly on Ctrl-C."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from hlsforge_dev.loopback import free_port
from hlsforge_dev.stack import DEMO_EMAIL, DEMO_PASSWORD, kubernetes

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
