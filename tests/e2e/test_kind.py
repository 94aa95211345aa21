"""End to end on the kind cluster of `make cluster-up`: a generated clip uploaded to MinIO, a
VideoTranscode applied with kubectl, the real operator and transcoder Jobs, a playable ladder.

Opt-in: `pytest tests/e2e --with-e2e` (skipped otherwise, and where Docker, kind or kubectl
are missing). Override the target with HLSFORGE_E2E_CONTEXT (kind-hlsforge),
HLSFORGE_E2E_NAMESPACE (hlsforge) and HLSFORGE_E2E_S3 (http://localhost:9000).
"""

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import m3u8
import pytest
from botocore.config import Config
from conftest import ClipFactory
from mypy_boto3_s3 import S3Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CONTEXT = os.environ.get("HLSFORGE_E2E_CONTEXT", "kind-hlsforge")
NAMESPACE = os.environ.get("HLSFORGE_E2E_NAMESPACE", "hlsforge")
S3_ENDPOINT = os.environ.get("HLSFORGE_E2E_S3", "http://localhost:9000")
UPLOADS, MEDIA = "hlsforge-uploads", "hlsforge-media"  # charts/hlsforge/values.yaml
FINAL = {"Succeeded", "Failed", "Cancelled"}


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    for tool in ("docker", "kind", "kubectl", "ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the e2e test needs the kind cluster")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("the Docker daemon is not reachable: the e2e test needs the kind cluster")


def kubectl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["kubectl", "--context", CONTEXT, "--namespace", NAMESPACE, *args],
        input=stdin, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def s3() -> S3Client:
    """MinIO through the host port of kind-config.yaml, with the chart's generated keys."""
    try:
        secrets = json.loads(
            kubectl("get", "secrets", "-l", "app.kubernetes.io/component=s3", "-o", "json")
        )["items"]
    except AssertionError as error:
        pytest.fail(f"no hlsforge cluster at context {CONTEXT}: run `make cluster-up` ({error})")
    assert secrets, f"no S3 Secret in namespace {NAMESPACE}: run `make cluster-up`"
    data = {k: base64.b64decode(v).decode() for k, v in secrets[0]["data"].items()}
    return boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        aws_access_key_id=data["accessKeyId"],
        aws_secret_access_key=data["secretAccessKey"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def transcode(s3: S3Client, clip: ClipFactory) -> Iterator[dict[str, Any]]:
    """A 540p clip in the upload bucket and a VideoTranscode for it (deleted afterwards)."""
    run = uuid.uuid4().hex[:8]
    source = clip("source.mp4", size="960x540", seconds=6)
    key = f"e2e/{run}/source.mp4"
    s3.upload_file(str(source), UPLOADS, key)
    resource: dict[str, Any] = {
        "apiVersion": "hlsforge.dev/v1alpha1",
        "kind": "VideoTranscode",
        "metadata": {"name": f"e2e-{run}", "namespace": NAMESPACE},
        "spec": {
            "source": {"bucket": UPLOADS, "key": key},
            "output": {"bucket": MEDIA, "prefix": f"e2e/{run}", "cleanupOnDelete": True},
            "renditions": [
                {"name": "360p", "height": 360, "videoBitrate": "365k"},
                {"name": "540p", "height": 540, "videoBitrate": "2000k"},
            ],
            "segmentSeconds": 2,
            "gopSeconds": 2,
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(resource))
    yield resource
    kubectl("delete", "videotranscode", resource["metadata"]["name"], "--wait=false")
    s3.delete_object(Bucket=UPLOADS, Key=key)


def wait_for_final_phase(name: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = json.loads(kubectl("get", "videotranscode", name, "-o", "json")).get("status", {})
        if status.get("phase") in FINAL:
            return status
        time.sleep(3)
    pytest.fail(f"{name} did not finish in {timeout} s; last status: {status}")


def test_a_video_transcode_on_kind_ends_in_a_playable_ladder(
    s3: S3Client, transcode: dict[str, Any], tmp_path: Path
) -> None:
    status = wait_for_final_phase(transcode["metadata"]["name"])
    assert status["phase"] == "Succeeded", status
    assert status["progress"] == 100
    assert sorted(r["name"] for r in status["renditions"]) == ["360p", "540p"]

    prefix = transcode["spec"]["output"]["prefix"]
    master_key = status["playback"]["masterPlaylist"]
    assert master_key == f"{prefix}/master.m3u8"
    listed = s3.list_objects_v2(Bucket=MEDIA, Prefix=f"{prefix}/")
    for item in listed.get("Contents", []):
        target = tmp_path / item["Key"].removeprefix(f"{prefix}/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(MEDIA, item["Key"], str(target))

    master = m3u8.load(str(tmp_path / "master.m3u8"))
    assert master.is_variant
    assert sorted(p.stream_info.resolution for p in master.playlists) == [(640, 360), (960, 540)]
    for variant in master.playlists:
        assert variant.stream_info.bandwidth > 0
        assert variant.stream_info.average_bandwidth > 0
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height",
         "-of", "json", str(tmp_path / "master.m3u8")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    heights = {s.get("height") for s in json.loads(probe.stdout)["streams"] if s.get("height")}
    assert heights == {360, 540}
