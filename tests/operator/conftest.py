"""The operator against the emulated cluster, moto S3 and real worker processes."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import AWS
from hlsforge_dev import EmulatedCluster, JobRunner


@pytest.fixture
def operator_env(
    cluster: EmulatedCluster, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The operator's environment (it runs in this process, in Kopf's thread)."""
    env = {
        **AWS,
        "KUBECONFIG": str(cluster.write_kubeconfig(tmp_path / "kubeconfig")),
        "AWS_ENDPOINT_URL": s3_endpoint,
        "HLSFORGE_JOB__S3_ENDPOINT_URL": s3_endpoint,
        "HLSFORGE_STATUS_INTERVAL_SECONDS": "0.5",
        "HLSFORGE_MAX_RUNNING_JOBS": "4",
        "HLSFORGE_METRICS_PORT": "0",  # any free port
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def runner(cluster: EmulatedCluster, tmp_path: Path) -> Iterator[JobRunner]:
    """Jobs run as real `hlsforge-worker` processes."""
    with JobRunner(cluster, env=dict(os.environ), scratch_root=tmp_path / "pods") as jobs:
        yield jobs
