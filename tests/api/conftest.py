"""The API served by a real uvicorn on loopback, against SecantusDB, moto S3 and the
emulated Kubernetes API."""

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import AWS, Api, Signup, serve
from hlsforge_dev import EmulatedCluster
from pymongo import MongoClient
from pymongo.database import Database

from transcode_api.main import create_app
from transcode_api.settings import ApiSettings

MiB = 1024 * 1024
PASSWORD = "correct horse battery"


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
