"""`hlsforge cancel` and `hlsforge retry` as real processes, against the API with the real
operator (tests/operated.py: the first 1080p Job encodes until it is stopped)."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ClipFactory
from helpers import Api
from hlsforge_dev import EmulatedCluster
from operated import held_1080p, operated, wait_encoding

pytestmark = pytest.mark.usefixtures("operator_env")
PASSWORD = "a long enough password"


def signed_in_cli(api: Api, config_dir: Path) -> Any:
    env = {**os.environ, "HLSFORGE_CONFIG_DIR": str(config_dir), "HLSFORGE_API_URL": api.url}

    def cli(*args: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hlsforge_cli", *map(str, args)], env=env, input=input,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    email = f"cli-{uuid.uuid4().hex[:10]}@example.com"
    httpx.post(f"{api.url}/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert cli("login", "--email", email, "--password-stdin", input=PASSWORD).returncode == 0
    return cli


def test_cancel_then_retry_to_a_playable_url(
    api: Api, cluster: EmulatedCluster, s3: Any, clip: ClipFactory, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    cli = signed_in_cli(api, tmp_path / "config")
    release = threading.Event()
    with operated(api, cluster, held_1080p(s3, release, {}), monkeypatch):
        uploaded = cli("upload", clip("a.mp4", seconds=1), "--no-follow")
        assert uploaded.returncode == 0, uploaded.stderr
        video_id = uploaded.stdout.split()[0]
        wait_encoding(cluster, video_id)
        running = cli("retry", video_id)
        assert running.returncode == 3, running.stderr  # 409: it has not ended
        assert "has not ended" in running.stderr

        cancelled = cli("cancel", video_id)
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"hlsforge retry {video_id}" in cancelled.stderr
        deadline = time.monotonic() + 60
        while json.loads(cli("status", video_id, "--json").stdout)["video"]["phase"] != (
            "cancelled"
        ):
            assert time.monotonic() < deadline, "never cancelled"
            time.sleep(0.2)
        again = cli("cancel", video_id)
        assert again.returncode == 3
        assert "the transcode has already ended (cancelled)" in again.stderr

        retried = cli("retry", video_id)  # follows until it has succeeded
        release.set()
    assert retried.returncode == 0, retried.stderr
    assert "/api/v1/playback/" in retried.stdout.splitlines()[-1]
    assert cli("cancel", "0" * 24).returncode == 1  # not there: 404
