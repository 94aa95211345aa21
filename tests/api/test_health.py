"""Liveness, readiness and the OpenAPI page."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from helpers import Api, serve
from hlsforge_dev.loopback import free_port, wait_for_port

from transcode_api.main import create_app
from transcode_api.settings import ApiSettings


def test_ready_when_everything_answers(api: Api) -> None:
    with api.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        checks = {"mongodb": "ok", "s3": "ok", "kubernetes": "ok"}
        assert ready.json() == {"status": "ok", "checks": checks}
        assert client.get("/docs").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/auth/login", "/api/v1/videos", "/api/v1/videos/{video_id}/complete"} <= set(
        paths
    )
    login_body = paths["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    assert set(login_body) == {"application/json", "application/x-www-form-urlencoded"}


def test_not_ready_names_what_is_down(api_settings: ApiSettings) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = api_settings.model_copy(update={"s3_endpoint_url": dead})
    with serve(create_app(settings)) as url:
        live = Api(url, settings)
        with live.client() as client:
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"mongodb": "ok", "s3": "unavailable", "kubernetes": "ok"}


SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-playback-token.sig"


@pytest.mark.parametrize("command", ["hlsforge-api", "uvicorn"])
def test_the_api_runs_as_a_process(command: str, api_settings: ApiSettings) -> None:
    """`hlsforge-api` (JSON logs) and `uvicorn transcode_api.main:app` both serve."""
    port = free_port()
    env = {**os.environ, **{f"HLSFORGE_{k.upper()}": str(v) for k, v in {
        "jwt_secret": api_settings.jwt_secret.get_secret_value(),
        "mongodb_uri": api_settings.mongodb_uri.get_secret_value(),
        "mongodb_database": api_settings.mongodb_database,
        "s3_endpoint_url": api_settings.s3_endpoint_url,
        "kubeconfig": api_settings.kubeconfig,
    }.items()}}  # fmt: skip
    bin_dir = Path(sys.executable).parent
    args = {
        "hlsforge-api": [str(bin_dir / "hlsforge-api"), "--port", str(port)],
        "uvicorn": [str(bin_dir / "uvicorn"), "transcode_api.main:app", "--port", str(port)],
    }[command]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        wait_for_port(port)
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "r-1"})
        assert response.json() == {"status": "ok"}
        httpx.get(f"http://127.0.0.1:{port}/api/v1/playback/{SECRET_TOKEN}/master.m3u8")
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert SECRET_TOKEN not in stdout + stderr  # in neither uvicorn's access log nor ours
    assert "/api/v1/playback/{token}" in stdout + stderr
    if command == "hlsforge-api":
        lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        access = [line for line in lines if line["logger"] == "transcode_api.access"]
        assert access[0]["requestId"] == "r-1"
        assert access[0]["route"] == "/healthz"


def test_placeholder_secret_stops_the_process(api_settings: ApiSettings) -> None:
    env = {**os.environ, "HLSFORGE_JWT_SECRET": "changethis"}
    result = subprocess.run([str(Path(sys.executable).parent / "hlsforge-api")], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode != 0
    assert "HLSFORGE_JWT_SECRET must be a random value" in result.stderr
