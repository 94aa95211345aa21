"""Deleting a resource's outputs (`cleanupOnDelete`): stop its Jobs, wait until their pods
have stopped, then remove everything under the output prefix. (Owner references would remove
the Jobs only after the finalizer, and a worker finishing meanwhile would upload into the
cleaned prefix.)"""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from transcode_operator.kube import Kube
from transcode_operator.observe import JobsIndex, Key
from transcode_operator.outputs import delete_outputs

STOP_CHECK_SECONDS, STOP_CHECKS = 1.0, 120


async def stop_then_delete_outputs(
    key: Key, output: Mapping[str, Any], *, kube: Kube, s3: Any, jobs: JobsIndex,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:  # fmt: skip
    """`logger`: the handler's, so what happens is told on the resource."""
    await _stop(key, kube=kube, jobs=jobs, logger=logger)
    bucket, prefix = output["bucket"], output["prefix"]
    count = await asyncio.to_thread(delete_outputs, s3, bucket=bucket, prefix=prefix)
    logger.info("deleted %d objects under s3://%s/%s/", count, bucket, prefix)


async def _stop(
    key: Key, *, kube: Kube, jobs: JobsIndex, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    namespace, name = key
    # Waiting for the pods to stop is expected, so it is logged at INFO in here: a
    # TemporaryError would be logged (and posted as an Event) as an error on each retry.
    for check in range(STOP_CHECKS):
        names = [job["name"] for job in jobs.get(key, [])]  # the index is live
        for job_name in names:
            await kube.delete_job(namespace, job_name)
        running = names or await kube.pods_still_running(namespace, name)
        if not running:
            return
        if check == 0:
            logger.info(
                "stopping the transcode before deleting its outputs: %s", ", ".join(running)
            )
        await asyncio.sleep(STOP_CHECK_SECONDS)
    # Pods that outlive their grace period: worth an error, and a retry later.
    raise kopf.TemporaryError("the transcode's pods have not stopped yet", delay=10)
