"""Kopf handlers: thin adapters from watch events to the engine.

Start with `hlsforge-operator`, or `kopf run --standalone -A -m transcode_operator.handlers`.
"""

from typing import Any

import kopf

from transcode_operator import wiring
from transcode_operator.cleanup import stop_then_delete_outputs
from transcode_operator.jobs import (
    LABEL_MANAGED_BY,
    LABEL_ROLE,
    LABEL_TRANSCODE,
    MANAGED_BY,
    ROLE_RENDITION,
)
from transcode_operator.observe import (
    COMPLETION_INDEX,
    JobsIndex,
    PodsIndex,
    job_entry,
    pod_entry,
    pod_job_name,
)
from transcode_operator.settings import OperatorSettings
from videotranscode import CANCEL_ANNOTATION, GROUP, PLURAL, RETRY_ANNOTATION, VERSION

MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: the kubeconfig."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """On start: Kopf settings, clients, the engine and the background publishers."""
    config = OperatorSettings()
    wiring.configure(settings, config)
    memo.running = wiring.start(config)
    memo.engine = memo.running.engine


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """On stop: end the background work and close the clients, then give up the Lease."""
    if (running := memo.get("running")) is not None:
        await running.stop()
    if (release_lease := memo.get("release_lease")) is not None:
        await release_lease()  # nothing writes any more: the standby may start


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
def transcode_jobs(
    *, namespace: str | None, name: str, labels: kopf.Labels, spec: kopf.Spec,
    status: kopf.Status, **_: Any,
) -> dict[tuple[str | None, str], dict[str, Any]] | None:  # fmt: skip
    """Our Jobs, by (namespace, resource)."""
    resource = labels.get(LABEL_TRANSCODE)
    return {(namespace, resource): job_entry(name, labels, spec, status)} if resource else None


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
    await memo.engine.reconcile((namespace, name), *_indexes(kwargs))


# Kopf's change detection covers the spec only, so a retry is noticed through watch events;
# reconciling is idempotent, and the same retry value never runs anything twice.
@kopf.on.event(GROUP, VERSION, PLURAL, annotations={RETRY_ANNOTATION: kopf.PRESENT})
async def retry_requested(*, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    """A VideoTranscode with `hlsforge.dev/retry` changed: failed parts may run again."""
    if namespace is not None and kwargs.get("type") != "DELETED":
        await memo.engine.reconcile((namespace, name), *_indexes(kwargs))


@kopf.on.event(GROUP, VERSION, PLURAL, annotations={CANCEL_ANNOTATION: kopf.PRESENT})
async def cancel_requested(*, namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    """A VideoTranscode with `hlsforge.dev/cancel`: stop what has not finished."""
    if namespace is not None and kwargs.get("type") != "DELETED":
        await memo.engine.reconcile((namespace, name), *_indexes(kwargs))


# Not a finalizer (that would block every deletion while the operator is down): the DELETED
# event, and at start-up `cancel_vanished` for deletions the operator did not see.
@kopf.on.event(GROUP, VERSION, PLURAL)
async def transcode_deleted(
    *, namespace: str | None, name: str, body: kopf.Body, memo: Any, **kwargs: Any
) -> None:
    """A VideoTranscode is gone (kubectl, the API, its namespace): unfinished is cancelled."""
    if namespace is not None and kwargs.get("type") == "DELETED":
        await memo.engine.deleted((namespace, name), dict(body), *_indexes(kwargs))


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def job_changed(
    *, namespace: str | None, labels: kopf.Labels, memo: Any, **kwargs: Any
) -> None:
    """One of our Jobs changed: roll it up into its VideoTranscode."""
    if namespace is not None and (resource := labels.get(LABEL_TRANSCODE)):
        await memo.engine.reconcile((namespace, resource), *_indexes(kwargs))


@kopf.on.event("v1", "pods", labels=MANAGED)
async def pod_changed(
    *, namespace: str | None, labels: kopf.Labels, memo: Any, **kwargs: Any
) -> None:
    """A worker was scheduled, started or ended: its rung may be Pending (with the
    scheduler's reason), Running, or complete (its termination message)."""
    if namespace is not None and (resource := labels.get(LABEL_TRANSCODE)):
        await memo.engine.reconcile((namespace, resource), *_indexes(kwargs))


@kopf.on.event("v1", "pods", labels={**MANAGED, LABEL_ROLE: ROLE_RENDITION})
async def rendition_pod_changed(
    *, namespace: str | None, name: str, labels: kopf.Labels, status: kopf.Status, memo: Any,
    **kwargs: Any,
) -> None:  # fmt: skip
    """A rendition pod runs: follow its log for progress. (Not a Kopf daemon: daemons put
    finalizers on pods, which would block their deletion whenever the operator is down.)"""
    if namespace is not None and status.get("phase") == "Running":
        key = (namespace, labels[LABEL_TRANSCODE])
        index = labels.get(COMPLETION_INDEX)  # a slice of an Indexed Job
        memo.engine.follow(namespace, name, key, *_indexes(kwargs),
                           slice_index=int(index) if index is not None else None)  # fmt: skip


def _cleanup_requested(*, spec: kopf.Spec, **_: Any) -> bool:
    return bool(spec.get("output", {}).get("cleanupOnDelete"))


@kopf.on.delete(GROUP, VERSION, PLURAL, id="delete-outputs", when=_cleanup_requested)
async def delete_outputs(
    *, spec: kopf.Spec, namespace: str | None, name: str, memo: Any, logger: kopf.Logger,
    **kwargs: Any,
) -> None:  # fmt: skip
    """Deleted with `cleanupOnDelete`: stop its Jobs, then remove its outputs."""
    assert namespace is not None  # VideoTranscodes are namespaced
    await stop_then_delete_outputs(
        (namespace, name), spec["output"], kube=memo.engine.kube, s3=memo.engine.executors.s3,
        jobs=_indexes(kwargs)[0], logger=logger,
    )  # fmt: skip
