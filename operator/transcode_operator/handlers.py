"""Kopf handlers: thin adapters from watch events to the Controller.

Start with `hlsforge-operator`, or `kopf run --standalone -A -m transcode_operator.handlers`.
"""

import asyncio
import logging
from typing import Any

import boto3
import kopf
import prometheus_client
from botocore.config import Config
from kubernetes.client.exceptions import ApiException
from pymongo.errors import PyMongoError

from transcode_operator.controller import Controller, JobsIndex, PodsIndex
from transcode_operator.jobs import (
    LABEL_MANAGED_BY,
    LABEL_ROLE,
    LABEL_TRANSCODE,
    MANAGED_BY,
    ROLE_RENDITION,
)
from transcode_operator.kube import Kube, api_client
from transcode_operator.observe import job_entry, pod_entry, pod_job_name
from transcode_operator.publish import Realtime, VideoStore
from transcode_operator.reconcile import CANCEL_ANNOTATION, RETRY_ANNOTATION
from transcode_operator.settings import OperatorSettings
from videotranscode import GROUP, PLURAL, VERSION

logger = logging.getLogger(__name__)
MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}
FINALIZER = "hlsforge.dev/cleanup"
MONGO_RETRY_SECONDS = 10
STOP_CHECK_SECONDS, STOP_CHECKS = 1.0, 120  # deleting with cleanup: waiting for pods to stop


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: the kubeconfig."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """On start: Kopf settings, clients and the background publishers."""
    config = OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="hlsforge.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="hlsforge.dev")
    settings.posting.level = logging.WARNING  # phase changes are posted as Events explicitly
    if config.namespaces:
        # Fixed namespaces need no scanning, and a namespaced Role cannot list namespaces or CRDs.
        settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    s3 = boto3.client(
        "s3", config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"})
    )
    controller = Controller(settings=config, kube=Kube(api_client()), s3=s3)
    memo.tasks = []
    if config.mongodb_uri is not None:
        controller.videos = VideoStore(
            config.mongodb_uri.get_secret_value(), config.mongodb_database
        )
        memo.tasks.append(asyncio.create_task(_retry_mongo_writes(controller.videos)))
        memo.tasks.append(asyncio.create_task(_cancel_vanished(controller, config.namespaces)))
    if config.api_url and config.service_token is not None:
        controller.realtime = Realtime(config.api_url, config.service_token.get_secret_value())
        memo.tasks.append(asyncio.create_task(controller.realtime.connect_forever()))
    memo.controller = controller
    memo.metrics_server = prometheus_client.start_http_server(
        config.metrics_port, addr=config.bind_address
    )[0]


async def _retry_mongo_writes(videos: VideoStore) -> None:
    while True:
        await asyncio.sleep(MONGO_RETRY_SECONDS)
        await videos.retry_pending()


async def _cancel_vanished(controller: Controller, namespaces: list[str]) -> None:
    while True:
        try:
            count = await controller.cancel_vanished(namespaces)
        except (PyMongoError, ApiException) as exc:
            logger.warning("looking for videos deleted meanwhile failed, will retry: %s", exc)
            await asyncio.sleep(MONGO_RETRY_SECONDS)
        else:
            if count:
                logger.info("%d videos whose resource was deleted meanwhile are cancelled", count)
            return


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """On stop: end the background publishers."""
    for task in memo.get("tasks", []):
        task.cancel()
    if (controller := memo.get("controller")) is not None:
        controller.stop()
    if (metrics_server := memo.get("metrics_server")) is not None:
        metrics_server.shutdown()
        metrics_server.server_close()
    if controller is not None and controller.videos is not None:
        controller.videos.close()
    if controller is not None and controller.realtime is not None:
        await controller.realtime.close()


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
def transcode_jobs(
    *, namespace: str | None, name: str, labels: kopf.Labels, status: kopf.Status, **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]] | None:
    """Our Jobs, by (namespace, resource)."""
    resource = labels.get(LABEL_TRANSCODE)
    return {(namespace, resource): job_entry(name, labels, status)} if resource else None


@kopf.index("v1", "pods", labels=MANAGED)
def transcode_pods(
    *, namespace: str | None, name: str, labels: kopf.Labels, status: kopf.Status, **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]] | None:
    """Our pods (phase, why not started, exit code, termination message), by (namespace, job)."""
    job = pod_job_name(labels)
    return {(namespace, job): pod_entry(name, status)} if job else None


def _indexes(kwargs: dict[str, Any]) -> tuple[JobsIndex, PodsIndex]:
    """Kopf passes each index as a keyword named after its function."""
    return kwargs["transcode_jobs"], kwargs["transcode_pods"]


@kopf.on.resume(GROUP, VERSION, PLURAL, id="resume")
@kopf.on.create(GROUP, VERSION, PLURAL, id="start")
@kopf.on.update(GROUP, VERSION, PLURAL, id="update")
async def transcode_changed(*, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    """A VideoTranscode was created, changed (e.g. a retry) or found at start-up."""
    assert namespace is not None  # the resource is namespaced
    await memo.controller.reconcile(namespace, name, *_indexes(kwargs))


# Kopf's change detection covers the spec only, so a retry is noticed through watch events;
# reconciling is idempotent, and the same retry value never runs anything twice.
@kopf.on.event(GROUP, VERSION, PLURAL, annotations={RETRY_ANNOTATION: kopf.PRESENT})
async def retry_requested(*, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    """A VideoTranscode with `hlsforge.dev/retry` changed: failed parts may run again."""
    if namespace is not None and kwargs.get("type") != "DELETED":
        await memo.controller.reconcile(namespace, name, *_indexes(kwargs))


@kopf.on.event(GROUP, VERSION, PLURAL, annotations={CANCEL_ANNOTATION: kopf.PRESENT})
async def cancel_requested(*, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    """A VideoTranscode with `hlsforge.dev/cancel`: stop what has not finished."""
    if namespace is not None and kwargs.get("type") != "DELETED":
        await memo.controller.reconcile(namespace, name, *_indexes(kwargs))


# Not a finalizer (that would block every deletion while the operator is down): the DELETED
# event, and at start-up `cancel_vanished` for deletions the operator did not see.
@kopf.on.event(GROUP, VERSION, PLURAL)
async def transcode_deleted(
    *, namespace: str | None, name: str, body: kopf.Body, memo: Any, **kwargs: Any
) -> None:
    """A VideoTranscode is gone (kubectl, the API, its namespace): unfinished is cancelled."""
    if namespace is not None and kwargs.get("type") == "DELETED":
        await memo.controller.deleted(namespace, name, dict(body), *_indexes(kwargs))


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_changed(
    *, namespace: str | None, labels: kopf.Labels, memo: Any, **kwargs: Any
) -> None:
    """One of our Jobs changed: roll it up into its VideoTranscode."""
    if namespace is not None and (resource := labels.get(LABEL_TRANSCODE)):
        await memo.controller.reconcile(namespace, resource, *_indexes(kwargs))


@kopf.on.event("v1", "pods", labels=MANAGED)
async def pod_changed(
    *, namespace: str | None, labels: kopf.Labels, memo: Any, **kwargs: Any
) -> None:
    """A worker was scheduled, started or ended: its rung may be Pending (with the
    scheduler's reason), Running, or complete (its termination message)."""
    if namespace is not None and (resource := labels.get(LABEL_TRANSCODE)):
        await memo.controller.reconcile(namespace, resource, *_indexes(kwargs))


@kopf.on.event("v1", "pods", labels={**MANAGED, LABEL_ROLE: ROLE_RENDITION})
async def rendition_pod_changed(
    *, namespace: str | None, name: str, labels: kopf.Labels, status: kopf.Status, memo: Any,
    **kwargs: Any,
) -> None:  # fmt: skip
    """A rendition pod runs: follow its log for progress. (Not a Kopf daemon: daemons put
    finalizers on pods, which would block their deletion whenever the operator is down.)"""
    if namespace is not None and status.get("phase") == "Running":
        key = (namespace, labels[LABEL_TRANSCODE])
        memo.controller.follow(namespace, name, key, *_indexes(kwargs))


def _cleanup_requested(*, spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("output", {}).get("cleanupOnDelete"))


@kopf.on.delete(GROUP, VERSION, PLURAL, id="delete-outputs", when=_cleanup_requested)
async def delete_outputs(
    *, spec: kopf.Spec, namespace: str | None, name: str, memo: Any, logger: kopf.Logger,
    **kwargs: Any,
) -> None:  # fmt: skip
    """Deleted with `cleanupOnDelete`: stop its Jobs, then remove everything under the output
    prefix. (Owner references would remove the Jobs only after this finalizer, and a worker
    finishing meanwhile would upload into the cleaned prefix.)"""
    jobs, _ = _indexes(kwargs)
    kube = memo.controller.kube
    assert namespace is not None  # VideoTranscodes are namespaced
    # Waiting for the pods to stop is expected, so it is logged at INFO in here: a
    # TemporaryError would be logged (and posted as an Event) as an error on each retry.
    for check in range(STOP_CHECKS):
        names = [job["name"] for job in jobs.get((namespace, name), [])]  # the index is live
        for job_name in names:
            await kube.delete_job(namespace, job_name)
        running = names or await kube.pods_still_running(namespace, name)
        if not running:
            break
        if check == 0:
            logger.info(
                "stopping the transcode before deleting its outputs: %s", ", ".join(running)
            )
        await asyncio.sleep(STOP_CHECK_SECONDS)
    else:  # pods that outlive their grace period: worth an error, and a retry later
        raise kopf.TemporaryError("the transcode's pods have not stopped yet", delay=10)
    output = spec["output"]
    count = await asyncio.to_thread(
        memo.controller.delete_outputs, output["bucket"], output["prefix"]
    )
    logger.info("deleted %d objects under s3://%s/%s/", count, output["bucket"], output["prefix"])
