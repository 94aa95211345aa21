"""The operator's liveness and metrics servers listen where the settings say."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.error import URLError
from urllib.request import urlopen

import pytest
from hlsforge_dev import EmulatedCluster
from hlsforge_dev.loopback import free_port

from transcode_operator.main import liveness_endpoint
from transcode_operator.settings import OperatorSettings

ADDRESS = "127.0.0.2"  # loopback too, but not 127.0.0.1: shows which address was bound


def test_the_liveness_endpoint_is_built_from_the_settings() -> None:
    assert liveness_endpoint(OperatorSettings()) == "http://0.0.0.0:8080/healthz"
    settings = OperatorSettings(bind_address="::", liveness_port=9000)
    assert liveness_endpoint(settings) == "http://[::]:9000/healthz"
    local = OperatorSettings(bind_address="127.0.0.1", liveness_port=9001)
    assert liveness_endpoint(local) == "http://127.0.0.1:9001/healthz"


def get(url: str) -> int:
    with urlopen(url, timeout=5) as response:  # noqa: S310 (a loopback URL of this test)
        return int(response.status)


@pytest.fixture
def operator_process(
    cluster: EmulatedCluster, operator_env: dict[str, str]
) -> Iterator[tuple[int, int]]:
    """`hlsforge-operator` as deployed, bound to ADDRESS; yields (liveness, metrics) ports."""
    liveness, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "HLSFORGE_BIND_ADDRESS": ADDRESS,
        "HLSFORGE_LIVENESS_PORT": str(liveness),
        "HLSFORGE_METRICS_PORT": str(metrics),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from transcode_operator.main import main; main()"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield liveness, metrics
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_liveness_and_metrics_listen_on_the_bind_address(
    operator_process: tuple[int, int],
) -> None:
    liveness, metrics = operator_process
    deadline = time.monotonic() + 60
    while True:
        try:
            # the standby's liveness answers first; metrics start once the Lease is held
            assert get(f"http://{ADDRESS}:{liveness}/healthz") == 200
            assert get(f"http://{ADDRESS}:{metrics}/metrics") == 200
            break
        except URLError:
            assert time.monotonic() < deadline, "the liveness or metrics endpoint never answered"
            time.sleep(0.2)
    for port in (liveness, metrics):  # not every address: 127.0.0.1 is not ADDRESS
        with pytest.raises(URLError):
            get(f"http://127.0.0.1:{port}/")
