"""The operator's calls to the Kubernetes API (the `kubernetes` client, run in threads)."""

import asyncio
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, cast

import kopf
import kubernetes
from kubernetes.client.exceptions import ApiException

from transcode_operator.jobs import LABEL_TRANSCODE
from videotranscode import GROUP, PLURAL, VERSION, VideoTranscodeStatus

CONFLICT = 409
LOG_SILENCE_SECONDS = 300  # a worker prints every second: this long silent, stop following
NOT_FOUND = 404


def api_client() -> kubernetes.client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(configuration)  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        # $KUBECONFIG read now: the kubernetes package reads it only once, at import.
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    return kubernetes.client.ApiClient(configuration)


def describe_error(exc: BaseException) -> str:
    """One line for a log: an API error as `400 Bad Request: <the API's message>` (the
    client's own text spans the response headers and body over several lines)."""
    if not isinstance(exc, ApiException):
        return " ".join(str(exc).split()) or type(exc).__name__
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    status = f"{exc.status} {exc.reason}".strip()
    return f"{status}: {' '.join(str(message).split())}" if message else status


def status_patch(status: VideoTranscodeStatus) -> dict[str, Any]:
    """A merge patch that sets the whole status: fields now unset are removed (null)."""
    body = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    cleared = {
        (info.alias or name): None for name, info in VideoTranscodeStatus.model_fields.items()
    }
    return {"status": {**cleared, **body}}


def owned(child: dict[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """`child` with an owner reference to `owner` (and its namespace), so it goes with it."""
    kopf.adopt(child, owner=cast(kopf.Body, owner))
    return child


class Kube:
    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.batch = kubernetes.client.BatchV1Api(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.custom = kubernetes.client.CustomObjectsApi(client)

    async def get_transcode(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body = await asyncio.to_thread(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise
        return cast(dict[str, Any], body)

    async def patch_status(self, namespace: str, name: str, status: VideoTranscodeStatus) -> None:
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object_status,
                GROUP, VERSION, namespace, PLURAL, name, status_patch(status),
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != NOT_FOUND:  # deleted meanwhile: nothing to report on
                raise

    async def create_job(self, namespace: str, job: dict[str, Any]) -> bool:
        """Create the Job unless it exists; True when this call created it."""
        try:
            # The client accepts plain dicts as bodies; its annotations name the model class.
            await asyncio.to_thread(self.batch.create_namespaced_job, namespace, cast(Any, job))
        except ApiException as exc:
            if exc.status == CONFLICT:
                return False
            raise
        return True

    async def widen_job(self, namespace: str, name: str, parallelism: int) -> None:
        """Let an Indexed Job run more of its slices at once; gone already is fine."""
        try:
            await asyncio.to_thread(
                self.batch.patch_namespaced_job, name, namespace,
                {"spec": {"parallelism": parallelism}},
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete the Job and (in the background) its pods; gone already is fine."""
        try:
            await asyncio.to_thread(
                self.batch.delete_namespaced_job, name, namespace, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise

    async def pods_still_running(self, namespace: str, transcode: str) -> list[str]:
        """The resource's pods that have not stopped (deleted pods take a while)."""
        pods: Any = await asyncio.to_thread(
            self.core.list_namespaced_pod,
            namespace,
            label_selector=f"{LABEL_TRANSCODE}={transcode}",
        )
        return [pod.metadata.name for pod in pods.items
                if pod.status.phase not in ("Succeeded", "Failed")]  # fmt: skip

    def follow_log(self, namespace: str, pod: str) -> Iterator[str]:
        """The pod's log lines as they come, until its container ends (blocking); none if
        the pod is gone (deleted with its resource)."""
        try:
            response: Any = self.core.read_namespaced_pod_log(
                pod, namespace, follow=True, _preload_content=False,
                _request_timeout=(10, LOG_SILENCE_SECONDS),
            )  # fmt: skip
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return
            raise
        try:
            buffer = b""
            for chunk in response.stream(amt=4096, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
            if buffer:
                yield buffer.decode(errors="replace")
        finally:
            response.release_conn()
