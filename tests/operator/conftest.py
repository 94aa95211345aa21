"""The operator against the emulated cluster, moto S3 and real worker processes."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hlsforge_dev import SECRETS, EmulatedCluster, JobRunner
from moto.server import ThreadedMotoServer

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
NAMESPACE = "default"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    for bucket in ("uploads", "media"):
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmulatedCluster]:
    with EmulatedCluster() as emulated:
        emulated.create(SECRETS, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hlsforge-s3"},
            "stringData": {"accessKeyId": "testing", "secretAccessKey": "testing"},
        }, namespace=NAMESPACE)  # fmt: skip
        yield emulated


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
