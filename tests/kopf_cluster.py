"""The operator in Kopf's own thread against the emulated cluster, and VideoTranscodes
created and awaited there: shared by the operator's cluster tests."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hlsforge_dev import VIDEOTRANSCODES, EmulatedCluster
from kopf.testing import KopfRunner

NAMESPACE = "default"

LADDER = [
    {"name": "144p", "height": 144, "videoBitrate": "150k"},
    {"name": "240p", "height": 240, "videoBitrate": "300k"},
]


@contextlib.contextmanager
def operator(*options: str) -> Iterator[KopfRunner]:
    """The operator in Kopf's own thread, as `kopf run` would start it."""
    args = ["run", "--standalone", "-A", *options, "-m", "transcode_operator.handlers"]
    with KopfRunner(args, timeout=120) as runner:
        yield runner
    assert runner.exception is None, runner.output


def manifest(name: str, key: str, **spec: Any) -> str:
    body = {
        "apiVersion": "hlsforge.dev/v1alpha1",
        "kind": "VideoTranscode",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "source": {"bucket": "uploads", "key": key},
            "output": {"bucket": "media", "prefix": f"videos/{name}"},
            "renditions": LADDER,
            **spec,
        },
    }
    return yaml.safe_dump(body)


def create(cluster: EmulatedCluster, name: str, key: str, **spec: Any) -> None:
    cluster.create(
        VIDEOTRANSCODES, yaml.safe_load(manifest(name, key, **spec)), namespace=NAMESPACE
    )


def upload(s3: Any, path: Path, key: str) -> None:
    s3.upload_file(str(path), "uploads", key)


def phase_of(body: dict[str, Any] | None) -> str | None:
    phase = (body or {}).get("status", {}).get("phase")
    return None if phase is None else str(phase)


def wait_phase(
    cluster: EmulatedCluster, name: str, *phases: str, timeout: float = 120
) -> dict[str, Any]:
    body = cluster.wait_for(VIDEOTRANSCODES, NAMESPACE, name, lambda b: phase_of(b) in phases,
                            timeout=timeout)  # fmt: skip
    assert body is not None
    return body
