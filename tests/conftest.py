"""Fixtures shared by all test packages."""

import contextlib
import os
import secrets
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from helpers import AWS, Api, Signup, make_clip, mongodb_server, serve
from hlsforge_dev import SECRETS, EmulatedCluster, JobRunner
from hlsforge_dev.loopback import free_port
from hlsforge_dev.stack import stack
from moto.server import ThreadedMotoServer
from pymongo import MongoClient
from pymongo.database import Database

from transcode_api.main import create_app
from transcode_api.settings import ApiSettings

ClipFactory = Callable[..., Path]
NAMESPACE = "default"
MiB = 1024 * 1024
PASSWORD = "correct horse battery"


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


@pytest.fixture(scope="session")
def paced_worker_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose FFmpeg reads its input at no more than twice real time, as a slow
    node would: a short clip's encode then lasts long enough, on any machine, for its live
    progress to be seen between 0 and 100."""
    real = shutil.which("ffmpeg")
    assert real is not None
    bin_dir = tmp_path_factory.mktemp("paced-ffmpeg")
    script = bin_dir / "ffmpeg"
    script.write_text(f'#!/bin/sh\nexec {real} -readrate 2 "$@"\n')
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def paced_runner(
    cluster: EmulatedCluster, tmp_path: Path, paced_worker_env: dict[str, str]
) -> Iterator[JobRunner]:
    """`runner`, with FFmpeg paced as in `paced_worker_env`."""
    env = {**os.environ, **paced_worker_env}
    with JobRunner(cluster, env=env, scratch_root=tmp_path / "pods") as jobs:
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
def dev_stack(
    tmp_path_factory: pytest.TempPathFactory, paced_worker_env: dict[str, str]
) -> Iterator[str]:
    """What `make dev` runs (emulated cluster and Jobs, moto, SecantusDB, the operator and
    the API with the web app), on free ports, for the whole session; yields the API's URL.
    FFmpeg is paced (`paced_worker_env`), so live progress shows on a fast machine too."""
    data_dir = tmp_path_factory.mktemp("stack")
    with stack(data_dir=data_dir, port=free_port(), s3_port=free_port(),
               worker_env=paced_worker_env) as running:  # fmt: skip
        yield running.url


@pytest.fixture
def api_settings(
    mongodb_uri: str, s3_endpoint: str, s3: Any, cluster: EmulatedCluster, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> ApiSettings:  # fmt: skip
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)
    return ApiSettings(
        jwt_secret=secrets.token_urlsafe(48),  # 64 characters: long enough for HS512
        service_token=secrets.token_urlsafe(32),
        mongodb_uri=mongodb_uri,
        mongodb_database=f"api_{uuid.uuid4().hex[:12]}",  # a fresh database per test
        s3_endpoint_url=s3_endpoint,
        upload_bucket="uploads",
        media_bucket="media",
        namespace="default",
        kubeconfig=str(cluster.write_kubeconfig(tmp_path / "kubeconfig")),
        multipart_threshold_bytes=5 * MiB,
        multipart_part_bytes=5 * MiB,
    )


@pytest.fixture
def api(api_settings: ApiSettings) -> Iterator[Api]:
    with serve(create_app(api_settings)) as url:
        yield Api(url, api_settings)


@pytest.fixture
def signup(api: Api) -> Signup:
    """`signup()` registers a new user and returns an access token."""

    def register(email: str | None = None, password: str = PASSWORD) -> str:
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
        with api.client() as client:
            client.post("/api/v1/auth/register", json={"email": email, "password": password})
            login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        token: str = login.json()["access_token"]
        return token

    return register


@pytest.fixture
def database(api_settings: ApiSettings) -> Iterator[Database[dict[str, Any]]]:
    """The API's MongoDB database, to look behind its back."""
    client: MongoClient[dict[str, Any]] = MongoClient(api_settings.mongodb_uri.get_secret_value())
    yield client[api_settings.mongodb_database]
    client.close()
