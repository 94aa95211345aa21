from typing import Any

from transcode_operator.jobs import (
    build_probe_job,
    build_rendition_job,
    job_name,
    tier_for,
)
from transcode_operator.settings import DEFAULT_TIERS, JobSettings
from videotranscode import DEFAULT_LADDER, VideoTranscodeSpec

SPEC = VideoTranscodeSpec.model_validate(
    {
        "source": {"bucket": "uploads", "key": "u1/v1/original.mov"},
        "output": {"bucket": "media", "prefix": "videos/v1"},
        "segmentType": "mpegts",
    }
)
SETTINGS = JobSettings(image="registry.example/transcoder:1.0", s3_endpoint_url="http://minio:9000")


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def test_job_names_are_deterministic_and_fit_in_63_characters() -> None:
    assert job_name("v-65f1c2", "720p") == "v-65f1c2-720p"
    long = job_name("a" * 80, "1080p")
    assert len(long) == 63
    assert long.endswith("-1080p")
    assert long == job_name("a" * 80, "1080p")
    assert long != job_name("a" * 79 + "b", "1080p")


def test_rendition_job_runs_the_worker_with_the_rung_and_packaging() -> None:
    rung = DEFAULT_LADDER[2]
    job = build_rendition_job("v1", SPEC, rung, SETTINGS, name="v1-720p")
    assert job["metadata"]["name"] == "v1-720p"
    assert job["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "hlsforge-operator",
        "hlsforge.dev/transcode": "v1",
        "hlsforge.dev/role": "rendition",
        "hlsforge.dev/rendition": "720p",
    }
    assert job["spec"]["template"]["metadata"]["labels"] == job["metadata"]["labels"]
    worker = container(job)
    assert worker["image"] == "registry.example/transcoder:1.0"
    assert worker["command"] == ["hlsforge-worker"]
    assert worker["args"] == [
        "rendition", "s3://uploads/u1/v1/original.mov", "s3://media/videos/v1",
        "--name", "720p", "--height", "720", "--video-bitrate", "3000000",
        "--max-bitrate", "4500000", "--audio-bitrate", "128000",
        "--segment-seconds", "6", "--gop-seconds", "2", "--segment-type", "mpegts",
    ]  # fmt: skip
    assert worker["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}


def test_jobs_fail_fast_on_bad_input_and_are_locked_down() -> None:
    job = build_probe_job("v1", SPEC, SETTINGS, name="v1-probe")
    assert job["metadata"]["name"] == "v1-probe"
    spec = job["spec"]
    assert spec["backoffLimit"] == 2
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["ttlSecondsAfterFinished"] >= 0
    fail_job, ignore = spec["podFailurePolicy"]["rules"]
    assert fail_job["action"] == "FailJob"
    assert fail_job["onExitCodes"]["values"] == [2]
    assert ignore == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    worker = container(job)
    assert worker["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert worker["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}]
    assert pod["volumes"][0]["emptyDir"]["sizeLimit"] == "20Gi"
    assert "limits" in worker["resources"]


def test_credentials_come_from_a_secret_reference_only() -> None:
    env = {
        e["name"]: e
        for e in container(build_probe_job("v1", SPEC, SETTINGS, name="v1-probe"))["env"]
    }
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "hlsforge-s3",
        "key": "accessKeyId",
    }
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
    assert env["HLSFORGE_SCRATCH_DIR"]["value"] == "/scratch"


def test_probe_job_writes_the_poster_as_the_spec_asks() -> None:
    args = container(build_probe_job("v1", SPEC, SETTINGS, name="v1-probe"))["args"]
    assert args == [
        "probe", "s3://uploads/u1/v1/original.mov", "s3://media/videos/v1",
        "--poster-at-percent", "10", "--poster-long-side", "640",
    ]  # fmt: skip
    no_poster = SPEC.model_copy(
        update={"thumbnail": SPEC.thumbnail.model_copy(update={"enabled": False})}
    )
    assert container(build_probe_job("v1", no_poster, SETTINGS, name="v1-probe"))["args"] == [
        "probe", "s3://uploads/u1/v1/original.mov",
    ]  # fmt: skip


def test_resource_tiers_grow_with_the_rung() -> None:
    assert tier_for(360, DEFAULT_TIERS).max_height == 540
    assert tier_for(1080, DEFAULT_TIERS).max_height == 1080
    assert tier_for(8000, DEFAULT_TIERS).max_height == 4320
