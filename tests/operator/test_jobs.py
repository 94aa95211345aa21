from typing import Any

import pytest

from transcode_operator.jobs import (
    Slicing,
    build_audio_job,
    build_probe_job,
    build_rendition_job,
    job_name,
    tier_for,
)
from transcode_operator.quantity import mebibytes, parse_quantity
from transcode_operator.settings import DEFAULT_TIERS, JobSettings, ResourceTier
from videotranscode import (
    DEFAULT_LADDER,
    AudioArgs,
    RenditionArgs,
    RenditionSpec,
    SourceInfo,
    VideoTranscodeSpec,
    plan_audio_renditions,
)

SPEC = VideoTranscodeSpec.model_validate(
    {
        "source": {"bucket": "uploads", "key": "u1/v1/original.mov"},
        "output": {"bucket": "media", "prefix": "videos/v1"},
        "segmentType": "mpegts",
    }
)
SETTINGS = JobSettings(image="registry.example/transcoder:1.0", s3_endpoint_url="http://minio:9000")
GiB, MiB = 1024**3, 1024**2
SOURCE = SourceInfo.model_validate({
    "durationSeconds": 600.0, "container": "mov,mp4", "sizeBytes": 3 * GiB,
    "video": {"codec": "h264", "width": 1920, "height": 1080, "fps": 30.0, "frameRate": "30/1",
              "pixelFormat": "yuv420p", "rotation": 0},
})  # fmt: skip
# What a probe reports today: with the facts a rendition needs (`has_encoding_facts`).
PROBED = SourceInfo.model_validate({
    **SOURCE.model_dump(by_alias=True), "startSeconds": 0.0, "videoShortfallSeconds": 0.0,
    "video": {**SOURCE.video.model_dump(by_alias=True), "streamIndex": 0},
    "audioStreams": [{"index": 0, "codec": "aac", "channels": 2, "sampleRate": 48000,
                      "streamIndex": 1}],
})  # fmt: skip


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
    job = build_rendition_job("v1", SPEC, rung, SETTINGS, name="v1-720p", source=SOURCE)
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
        "--source-info", SOURCE.model_dump_json(by_alias=True, exclude_none=True),
    ]  # fmt: skip
    assert worker["resources"]["requests"] == {
        "cpu": "1", "memory": "1Gi", "ephemeral-storage": "4432Mi",
    }  # fmt: skip


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


def storage(job: dict[str, Any]) -> tuple[int, int, int]:
    """(request, limit, scratch emptyDir sizeLimit) of ephemeral storage, in bytes."""
    resources = container(job)["resources"]
    (volume,) = job["spec"]["template"]["spec"]["volumes"]
    return (
        parse_quantity(resources["requests"]["ephemeral-storage"]),
        parse_quantity(resources["limits"]["ephemeral-storage"]),
        parse_quantity(volume["emptyDir"]["sizeLimit"]),
    )


def test_a_rendition_job_has_room_for_the_source_its_output_and_a_base() -> None:
    """The kubelet counts the scratch emptyDir against the pod's ephemeral-storage limit: the
    downloaded source, the rung's segments and the rest must all fit, or the pod is evicted."""
    rung = DEFAULT_LADDER[2]  # 720p: 3000k video + 128k audio
    job = build_rendition_job("v1", SPEC, rung, SETTINGS, name="v1-720p", source=SOURCE)
    output = (3_000_000 + 128_000) * 600 / 8  # bits/s x s / 8 = 234.6 MB
    expected = 1 * GiB + 3 * GiB + output * 1.5  # tier base + source + output with headroom
    request, limit, scratch = storage(job)
    assert expected <= limit < expected + MiB  # rounded up to whole MiB
    assert request == limit == scratch


def test_rendition_storage_follows_the_tier() -> None:
    tier = ResourceTier(max_height=8000, cpu_request="1", memory_request="1Gi",
                        memory_limit="2Gi", scratch_base="512Mi", output_headroom=2.0)  # fmt: skip
    settings = SETTINGS.model_copy(update={"resource_tiers": [tier]})
    rung = RenditionSpec(name="4k", height=2160, video_bitrate="16M", audio_bitrate="192k")
    job = build_rendition_job("v1", SPEC, rung, settings, name="v1-4k", source=SOURCE)
    output = (16_000_000 + 192_000) * 600 / 8
    expected = 512 * MiB + 3 * GiB + output * 2.0
    request, limit, _ = storage(job)
    assert expected <= limit < expected + MiB
    assert request == limit


def test_a_probe_job_holds_no_copy_of_the_source_whatever_its_size() -> None:
    """The probe reads the source through a URL: it gets the probe tier's base, reserved and
    limited alike, and nothing for the source, whose size it has yet to find out."""
    request, limit, scratch = storage(build_probe_job("v1", SPEC, SETTINGS, name="v1-probe"))
    assert (request, limit, scratch) == (1 * GiB, 1 * GiB, 1 * GiB)


@pytest.mark.parametrize(
    ("text", "number"),
    [("20Gi", 20 * GiB), ("512Mi", 512 * MiB), ("5G", 5 * 10**9), ("1.5Gi", 3 * GiB // 2),
     ("300M", 300 * 10**6), ("10k", 10_000), ("4096", 4096), ("1e3", 1000), ("2Ti", 2 * 1024**4)],
)  # fmt: skip
def test_quantities_parse_as_kubernetes_does(text: str, number: int) -> None:
    assert parse_quantity(text) == number


@pytest.mark.parametrize("text", ["", "Gi", "1GB", "-1Gi", "1 Gi", "1.2.3"])
def test_malformed_quantities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)


def test_sizes_are_written_in_whole_mebibytes_rounded_up() -> None:
    assert mebibytes(MiB) == "1Mi"
    assert mebibytes(MiB + 1) == "2Mi"
    assert mebibytes(21 * GiB) == "21504Mi"


def test_rendition_and_audio_pods_get_the_probes_facts_in_their_args() -> None:
    """So they do not probe the source again: the worker reads them back as reported."""
    rung = DEFAULT_LADDER[2]
    sliced = build_rendition_job("v1", SPEC, rung, SETTINGS, name="v1-720p", source=PROBED,
                                 slicing=Slicing(30, 20, parallelism=4))  # fmt: skip
    whole = build_rendition_job("v1", SPEC, rung, SETTINGS, name="v1-720p", source=PROBED)
    [plan] = plan_audio_renditions(PROBED.audio_streams)
    audio = build_audio_job("v1", SPEC, plan, SETTINGS, name="v1-audio-0", source=PROBED)
    for job in (sliced, whole, audio):
        args = container(job)["args"]
        given = SourceInfo.model_validate_json(args[args.index("--source-info") + 1])
        assert given == PROBED
        assert given.has_encoding_facts()
    read_back = RenditionArgs(
        source=SPEC.source.location, output=SPEC.output.location, rendition=rung,
        segment_type="mpegts", slice_seconds=30, audio=False, source_info=PROBED,
    )  # fmt: skip
    assert container(sliced)["args"] == read_back.argv()
    assert read_back.reads_source_ranges
    assert AudioArgs.for_rendition(plan, source="s3://b/k", output="s3://m/p").source_info is None


def test_a_slice_that_reads_ranges_of_an_s3_source_has_no_room_for_the_source() -> None:
    """A slice pod given the facts reads its part of an S3 source through a presigned URL:
    its scratch holds its share of the output and the tier's base, not the 3 GiB source."""
    rung = DEFAULT_LADDER[2]  # 720p: 3000k video + 128k audio
    slicing = Slicing(30, 20, parallelism=4)
    job = build_rendition_job("v1", SPEC, rung, SETTINGS, name="v1-720p", source=PROBED,
                              slicing=slicing)  # fmt: skip
    output = (3_000_000 + 128_000) * 30 / 8 * 1.5
    request, limit, scratch = storage(job)
    assert 1 * GiB + output <= limit < 1 * GiB + output + MiB
    assert request == limit == scratch
    # Without the facts (a status written by an older operator) the pod downloads the source;
    # so do slices of an http(s) source, and whole rungs.
    older = build_rendition_job("v1", SPEC, rung, SETTINGS, name="v1-720p", source=SOURCE,
                                slicing=slicing)  # fmt: skip
    url = SPEC.model_copy(update={"source": SPEC.source.model_copy(
        update={"bucket": None, "key": None, "url": "https://example.com/a.mp4"})})  # fmt: skip
    from_url = build_rendition_job("v1", url, rung, SETTINGS, name="v1-720p", source=PROBED,
                                   slicing=slicing)  # fmt: skip
    for downloading in (older, from_url):
        assert storage(downloading)[1] == limit + 3 * GiB
    whole = build_rendition_job("v1", SPEC, rung, SETTINGS, name="v1-720p", source=PROBED)
    assert storage(whole)[1] >= 4 * GiB
