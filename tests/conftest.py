"""Fixtures shared by all test packages."""

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from helpers import AWS, free_port, make_clip, mongodb_server
from hlsforge_dev import SECRETS, EmulatedCluster, JobRunner
from hlsforge_dev.stack import stack
from moto.server import ThreadedMotoServer

ClipFactory = Callable[..., Path]
NAMESPACE = "default"


@pytest.fixture
def clip(tmp_path: Path) -> ClipFactory:
    """`clip("name.mp4", size=..., seconds=...)` makes a clip under the test's tmp dir."""

    def factory(name: str = "source.mp4", **options: object) -> Path:
        return make_clip(tmp_path / name, **options)  # type: ignore[arg-type]

    return factory


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    """A MongoDB-compatible server for the whole test session."""
    with mongodb_server() as uri:
        yield uri


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback for the whole test session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    """A client of the moto server, with the buckets `uploads` and `media`."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    for bucket in ("uploads", "media"):
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    """An emulated Kubernetes API with the S3 Secret the transcode Jobs reference."""
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--with-e2e",
        action="store_true",
        default=False,
        help="run the e2e tests against the kind cluster of `make cluster-up`",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `e2e` run only with --with-e2e."""
    if config.getoption("--with-e2e"):
        return
    skip = pytest.mark.skip(reason="e2e on kind: run `make cluster-up`, then pytest --with-e2e")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """What `make dev` runs (emulated cluster and Jobs, moto, SecantusDB, the operator and
    the API with the web app), on free ports, for the whole session; yields the API's URL."""
    data_dir = tmp_path_factory.mktemp("stack")
    with stack(data_dir=data_dir, port=free_port(), s3_port=free_port()) as url:
        yield url
