"""The engine's own I/O paths against the emulated API server."""

import asyncio
import logging
from typing import Any

import pytest
from hlsforge_dev import PODS, EmulatedCluster

from transcode_operator.engine import Engine
from transcode_operator.kube import Kube, api_client
from transcode_operator.settings import OperatorSettings

NAMESPACE = "default"


@pytest.mark.usefixtures("operator_env")
async def test_a_failed_log_follow_is_one_readable_line(
    cluster: EmulatedCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A pod that has not started has no log yet (400 from the API): the warning gives the
    status and the API's message on one line, not the client's headers and body dump."""
    pod: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "v1-720p-abcde"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "x"}]},
    }  # fmt: skip
    cluster.create(PODS, pod, namespace=NAMESPACE)
    engine = Engine(settings=OperatorSettings(), kube=Kube(api_client()), s3=None)
    caplog.set_level(logging.INFO, logger="transcode_operator")
    try:
        engine.follow(NAMESPACE, "v1-720p-abcde", (NAMESPACE, "v1"), {}, {})
        task = engine.background.tasks[("pod", NAMESPACE, "v1-720p-abcde")]
        await asyncio.wait([task])
        await asyncio.sleep(0)  # the done callback runs next
    finally:
        engine.stop()
    (record,) = [r for r in caplog.records if r.name.startswith("transcode_operator")]
    assert record.getMessage() == (
        'pod/default/v1-720p-abcde failed: 400 Bad Request: container "worker" in pod '
        '"v1-720p-abcde" is waiting to start: ContainerCreating'
    )


@pytest.mark.usefixtures("operator_env", "cluster")
async def test_following_a_pod_that_is_gone_is_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pods are deleted under their followers (the resource was deleted): nothing to report."""
    engine = Engine(settings=OperatorSettings(), kube=Kube(api_client()), s3=None)
    caplog.set_level(logging.INFO, logger="transcode_operator")
    try:
        engine.follow(NAMESPACE, "v1-720p-gone1", (NAMESPACE, "v1"), {}, {})
        await asyncio.wait([engine.background.tasks[("pod", NAMESPACE, "v1-720p-gone1")]])
        await asyncio.sleep(0)
    finally:
        engine.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
