"""Fixtures for the emulated cluster: the server, a kubeconfig, and a `kubernetes` client."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from hlsforge_dev import EmulatedCluster


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster() as emulated:
        yield emulated


@pytest.fixture
def kubeconfig(cluster: EmulatedCluster, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[kubernetes.client.ApiClient]:
    """A client configured from the kubeconfig file (not from the process-wide default)."""
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    yield client
    client.close()


# The APIs typed as Any: the tests send and read plain dicts, not the client's models.


@pytest.fixture
def core(api: kubernetes.client.ApiClient) -> Any:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture
def custom(api: kubernetes.client.ApiClient) -> Any:
    return kubernetes.client.CustomObjectsApi(api)
