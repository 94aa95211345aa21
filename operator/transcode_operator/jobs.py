"""Pure builders of the probe and rendition Jobs (plain dicts, no I/O)."""

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from transcode_operator.quantity import mebibytes, parse_quantity
from transcode_operator.settings import JobSettings, ResourceTier
from videotranscode import (
    AudioArgs,
    AudioRendition,
    PosterArgs,
    ProbeArgs,
    RenditionArgs,
    RenditionSpec,
    SourceInfo,
    VideoTranscodeSpec,
)

MAX_NAME = 63  # Job names end up in the `job-name` label, limited to 63 characters
CONTAINER = "worker"
SCRATCH = "/scratch"
BAD_INPUT_EXIT_CODE = 2

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_TRANSCODE = "hlsforge.dev/transcode"
LABEL_ROLE = "hlsforge.dev/role"
LABEL_RENDITION = "hlsforge.dev/rendition"
MANAGED_BY = "hlsforge-operator"
ROLE_PROBE = "probe"
ROLE_RENDITION = "rendition"


def job_name(resource_name: str, suffix: str) -> str:
    """`<resource>-<suffix>`, shortened with a hash when it would exceed 63 characters."""
    name = f"{resource_name}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(resource_name.encode()).hexdigest()[:8]
    keep = MAX_NAME - len(suffix) - len(digest) - 2
    return f"{resource_name[:keep].rstrip('-')}-{digest}-{suffix}"


def job_labels(resource_name: str, role: str, rendition: str | None = None) -> dict[str, str]:
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_TRANSCODE: resource_name, LABEL_ROLE: role}
    if rendition is not None:
        labels[LABEL_RENDITION] = rendition
    return labels


def tier_for(height: int, tiers: list[ResourceTier]) -> ResourceTier:
    """The smallest tier that fits the rung (the largest one if none does)."""
    fitting = [tier for tier in tiers if tier.max_height >= height]
    return (
        min(fitting, key=lambda t: t.max_height)
        if fitting
        else max(tiers, key=lambda t: t.max_height)
    )


@dataclass(frozen=True)
class Storage:
    """Ephemeral storage of a pod, in bytes; the scratch emptyDir's sizeLimit is `limit`."""

    request: int
    limit: int


def rendition_storage(
    source: SourceInfo,
    rung: RenditionSpec,
    tier: ResourceTier,
    slice_seconds: int | None = None,
    *,
    holds_source: bool = True,
) -> Storage:
    """The downloaded source (unless the pod reads ranges of it, `holds_source=False`), the
    rung's segments (average bitrates x duration, with the tier's headroom; a slice's share of
    them) and the tier's base: all known after the probe, so reserved whole."""
    seconds = min(source.duration_seconds, slice_seconds or source.duration_seconds)
    output = (rung.video_bitrate + rung.audio_bitrate) * seconds / 8
    size = (
        parse_quantity(tier.scratch_base)
        + (source.size_bytes if holds_source else 0)
        + math.ceil(output * tier.output_headroom)
    )
    return Storage(request=size, limit=size)


def probe_storage(settings: JobSettings) -> Storage:
    """The probe reads the source where it is (through a presigned URL): its scratch holds
    no copy of it, only the poster and the logs, whatever the source's size."""
    base = parse_quantity(settings.probe_tier.scratch_base)
    return Storage(request=base, limit=base)


def _resources(tier: ResourceTier, storage: Storage) -> dict[str, Any]:
    requests = {
        "cpu": tier.cpu_request,
        "memory": tier.memory_request,
        "ephemeral-storage": mebibytes(storage.request),
    }
    limits = {"memory": tier.memory_limit, "ephemeral-storage": mebibytes(storage.limit)}
    if tier.cpu_limit:
        limits["cpu"] = tier.cpu_limit
    return {"requests": requests, "limits": limits}


def _env(settings: JobSettings) -> list[dict[str, Any]]:
    def secret(name: str, key: str) -> dict[str, Any]:
        ref = {"name": settings.s3_secret_name, "key": key}
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}

    env = [
        secret("AWS_ACCESS_KEY_ID", "accessKeyId"),
        secret("AWS_SECRET_ACCESS_KEY", "secretAccessKey"),
        {"name": "AWS_DEFAULT_REGION", "value": settings.s3_region},
        {"name": "HLSFORGE_SCRATCH_DIR", "value": SCRATCH},
        {"name": "HLSFORGE_MAX_DURATION_SECONDS", "value": str(settings.max_duration_seconds)},
    ]
    if settings.s3_endpoint_url:
        env.append({"name": "AWS_ENDPOINT_URL", "value": settings.s3_endpoint_url})
    return env


def build_job(
    *, name: str, labels: dict[str, str], args: list[str], tier: ResourceTier, storage: Storage,
    settings: JobSettings,
) -> dict[str, Any]:  # fmt: skip
    """A Job running `hlsforge-worker ARGS` once, locked down, failing fast on bad input."""
    container = {
        "name": CONTAINER,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["hlsforge-worker"],
        "args": args,
        "env": _env(settings),
        "resources": _resources(tier, storage),
        "volumeMounts": [{"name": "scratch", "mountPath": SCRATCH}],
        # A worker that dies before writing its result still leaves its last log lines.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": mebibytes(storage.limit)}}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "activeDeadlineSeconds": settings.active_deadline_seconds,
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "podFailurePolicy": {
                "rules": [
                    {  # exit code 2: the source is bad, another attempt cannot help
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER,
                            "operator": "In",
                            "values": [BAD_INPUT_EXIT_CODE],
                        },
                    },
                    {  # evictions and node drains are not the worker's fault
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                ]
            },
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def build_probe_job(
    resource_name: str, spec: VideoTranscodeSpec, settings: JobSettings, *, name: str
) -> dict[str, Any]:
    poster = None
    if spec.thumbnail.enabled:
        poster = PosterArgs(output=spec.output.location, at_percent=spec.thumbnail.at_percent,
                            long_side=spec.thumbnail.long_side)  # fmt: skip
    args = ProbeArgs(source=spec.source.location, poster=poster).argv()
    return build_job(
        name=name,
        labels=job_labels(resource_name, ROLE_PROBE),
        args=args,
        tier=settings.probe_tier,
        storage=probe_storage(settings),
        settings=settings,
    )


@dataclass(frozen=True)
class Slicing:
    """A rendition encoded in `count` time slices of `seconds`, `parallelism` at once."""

    seconds: int
    count: int
    parallelism: int
    done: frozenset[int] = frozenset()  # stored by an earlier Job: reused, not encoded again


def build_rendition_job(
    resource_name: str,
    spec: VideoTranscodeSpec,
    rung: RenditionSpec,
    settings: JobSettings,
    *,
    name: str,
    source: SourceInfo,
    slicing: Slicing | None = None,
) -> dict[str, Any]:
    """One pod for the rung, or with `slicing` an Indexed Job: pod i encodes slice i (the
    worker reads i from JOB_COMPLETION_INDEX) and a failed slice is retried alone. The pods
    get the probe's facts (`source`), so they do not probe the source again; a slice of an S3
    source reads only its byte ranges, so its pod needs no room for the source."""
    tier = tier_for(rung.height, settings.resource_tiers)
    wanted = RenditionArgs(
        source=spec.source.location, output=spec.output.location, rendition=rung,
        segment_seconds=spec.segment_seconds, gop_seconds=spec.gop_seconds,
        segment_type=spec.segment_type, slice_seconds=slicing.seconds if slicing else None,
        audio=not source.audio_streams,  # else the sound is in the audio renditions
        source_info=source, done_slices=slicing.done if slicing else frozenset(),
    )  # fmt: skip
    storage = rendition_storage(source, rung, tier, wanted.slice_seconds,
                                holds_source=not wanted.reads_source_ranges)  # fmt: skip
    job = build_job(
        name=name,
        labels=job_labels(resource_name, ROLE_RENDITION, rung.name),
        args=wanted.argv(),
        tier=tier,
        storage=storage,
        settings=settings,
    )
    if slicing is not None:
        del job["spec"]["backoffLimit"]  # counted per slice instead
        job["spec"].update(
            completionMode="Indexed",
            completions=slicing.count,
            parallelism=slicing.parallelism,
            backoffLimitPerIndex=settings.backoff_limit,
            maxFailedIndexes=0,  # a slice out of retries fails the rendition at once
        )
    return job


def build_audio_job(
    resource_name: str, spec: VideoTranscodeSpec, audio: AudioRendition, settings: JobSettings,
    *, name: str, source: SourceInfo,
) -> dict[str, Any]:  # fmt: skip
    """One pod encoding one audio stream of the source, whole, as an audio rendition (on the
    smallest tier: AAC encodes some 30x faster than real time on one core), with the probe's
    facts; an S3 source is streamed, so the pod needs no room for it."""
    tier = tier_for(0, settings.resource_tiers)
    wanted = AudioArgs.for_rendition(
        audio, source=spec.source.location, output=spec.output.location,
        segment_seconds=spec.segment_seconds, segment_type=spec.segment_type,
        source_info=source,
    )  # fmt: skip
    args = wanted.argv()
    output = math.ceil(audio.bitrate * source.duration_seconds / 8 * tier.output_headroom)
    held = 0 if wanted.reads_source_ranges else source.size_bytes
    size = parse_quantity(tier.scratch_base) + held + output
    return build_job(
        name=name,
        labels=job_labels(resource_name, ROLE_RENDITION, audio.name),
        args=args,
        tier=tier,
        storage=Storage(request=size, limit=size),
        settings=settings,
    )
