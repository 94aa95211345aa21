"""What the indexes keep of Jobs and Pods, and how it becomes JobState (pure)."""

import json
from collections.abc import Iterable, Mapping
from typing import Any

from transcode_operator.reconcile import JobState

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
MAX_LOG_MESSAGE = 500


def job_entry(name: str, labels: Mapping[str, str], status: Mapping[str, Any]) -> dict[str, Any]:
    conditions = {
        c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    failed = conditions.get("Failed") or {}
    return {
        "name": name,
        "role": labels.get("hlsforge.dev/role"),
        "active": int(status.get("active") or 0),
        "succeeded": int(status.get("succeeded") or 0),
        "failed": int(status.get("failed") or 0),
        "complete": "Complete" in conditions,
        "failedForGood": bool(failed),
        "reason": failed.get("message") or failed.get("reason") or "",
    }


def pod_job_name(labels: Mapping[str, str]) -> str | None:
    return labels.get(JOB_NAME_LABEL) or labels.get(LEGACY_JOB_NAME_LABEL)


def pod_entry(name: str, status: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pod's finished worker container, or None while it runs."""
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            return {
                "name": name,
                "exitCode": terminated.get("exitCode"),
                "message": terminated.get("message") or "",
                "finishedAt": terminated.get("finishedAt") or "",
            }
    return None


def parse_termination_message(message: str) -> dict[str, Any]:
    """The worker's last JSON event: its result when done, else the error event itself.
    Not JSON (the worker died; Kubernetes fell back to the log tail): the text as message."""
    try:
        event = json.loads(message)
    except ValueError:
        return {"message": message.strip()[-MAX_LOG_MESSAGE:]} if message.strip() else {}
    if not isinstance(event, dict):
        return {}
    if event.get("event") == "done" and isinstance(event.get("result"), dict):
        result: dict[str, Any] = event["result"]
        return result
    return event


def _result_pod(
    job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    finished = sorted(pods, key=lambda pod: str(pod["finishedAt"]))
    if job["complete"]:
        finished = [pod for pod in finished if pod["exitCode"] == 0]
    return finished[-1] if finished else None


def job_states(
    jobs: Iterable[Mapping[str, Any]], pods_by_job: Mapping[str, Iterable[Mapping[str, Any]]]
) -> dict[str, JobState]:
    states = {}
    for job in jobs:
        pod = _result_pod(job, pods_by_job.get(job["name"], []))
        states[job["name"]] = JobState(
            name=job["name"],
            active=job["active"],
            succeeded=job["succeeded"],
            failed=job["failed"],
            complete=job["complete"],
            failed_for_good=job["failedForGood"],
            reason=job["reason"],
            result=parse_termination_message(pod["message"]) if pod else None,
        )
    return states
