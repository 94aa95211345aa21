"""What the indexes keep of Jobs and Pods, and how it becomes JobState (pure)."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from videotranscode.slicing import parse_indexes

Key = tuple[str, str]  # (namespace, name)
JobsIndex = Mapping[Key, Iterable[Mapping[str, Any]]]  # by (namespace, resource)
PodsIndex = Mapping[Key, Iterable[Mapping[str, Any]]]  # by (namespace, job name)

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"  # label of an Indexed Job's pod
MAX_LOG_MESSAGE = 500


@dataclass(frozen=True)
class JobState:
    """A Job as observed, with the result its last finished pod left behind."""

    name: str
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failed_for_good: bool = False
    reason: str = ""  # the Job's Failed condition message, e.g. BackoffLimitExceeded
    result: Mapping[str, Any] | None = None  # the worker's termination message
    waiting: str | None = None  # why its active pod has not started (scheduler); None: runs
    completions: int = 1
    parallelism: int = 1
    completed_indexes: frozenset[int] = frozenset()  # Indexed Jobs: the slices done

    @property
    def attempts(self) -> int:
        return self.active + self.succeeded + self.failed

    @property
    def error(self) -> str:
        """The worker's own words when it left any, else the Job controller's."""
        message = (self.result or {}).get("message")
        return str(message) if message else (self.reason or "the job failed")


def job_entry(
    name: str, labels: Mapping[str, str], spec: Mapping[str, Any], status: Mapping[str, Any]
) -> dict[str, Any]:
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
        "completions": int(spec.get("completions") or 1),
        "parallelism": int(spec.get("parallelism") or 1),
        "completedIndexes": sorted(parse_indexes(status.get("completedIndexes"))),
    }


def pod_job_name(labels: Mapping[str, str]) -> str | None:
    return labels.get(JOB_NAME_LABEL) or labels.get(LEGACY_JOB_NAME_LABEL)


def _not_started(status: Mapping[str, Any]) -> str | None:
    """Why a Pending pod's worker has not started: the scheduler's message, else its
    container's waiting reason, else "" (no reason yet); None once the pod is past Pending."""
    if status.get("phase", "Pending") != "Pending":
        return None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("message") or condition.get("reason") or "")
    for container in status.get("containerStatuses") or []:
        if waiting := (container.get("state") or {}).get("waiting"):
            reason, message = waiting.get("reason") or "", waiting.get("message") or ""
            return f"{reason}: {message}" if reason and message else str(reason or message)
    return ""


def pod_entry(name: str, status: Mapping[str, Any]) -> dict[str, Any]:
    """What a pod tells: its phase, why its worker has not started yet (None once it has),
    and, once the worker has ended, its exit code and termination message."""
    entry: dict[str, Any] = {
        "name": name,
        "phase": status.get("phase", "Pending"),
        "waiting": _not_started(status),
    }
    for container in status.get("containerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            entry.update(
                exitCode=terminated.get("exitCode"),
                message=terminated.get("message") or "",
                finishedAt=terminated.get("finishedAt") or "",
            )
            break
    return entry


def finished(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's worker has ended (its entry has an exit code)."""
    return "exitCode" in pod


def _waiting(job: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> str | None:
    """Why an active Job's worker is not running: None when one of its pods runs (or
    the Job has no active pod), else the first reason a pending pod gives (or "")."""
    if not job["active"] or any(pod["phase"] == "Running" for pod in pods):
        return None
    reasons = [pod["waiting"] for pod in pods if not finished(pod) and pod["waiting"]]
    return reasons[0] if reasons else ""


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
    ended = sorted((pod for pod in pods if finished(pod)), key=lambda pod: str(pod["finishedAt"]))
    if job["complete"]:
        ended = [pod for pod in ended if pod["exitCode"] == 0]
    elif job["failedForGood"]:
        # The worker that failed it, in its own words: not a slice that succeeded, nor one
        # stopped because another failed the Job.
        failed = [pod for pod in ended if pod["exitCode"] != 0] or ended
        ended = [p for p in failed if parse_termination_message(p["message"]).get("message")]
        ended = ended or failed
    return ended[-1] if ended else None


def job_states(
    jobs: Iterable[Mapping[str, Any]], pods_by_job: Mapping[str, Iterable[Mapping[str, Any]]]
) -> dict[str, JobState]:
    states = {}
    for job in jobs:
        pods = list(pods_by_job.get(job["name"], []))
        pod = _result_pod(job, pods)
        states[job["name"]] = JobState(
            name=job["name"],
            active=job["active"],
            succeeded=job["succeeded"],
            failed=job["failed"],
            complete=job["complete"],
            failed_for_good=job["failedForGood"],
            reason=job["reason"],
            result=parse_termination_message(pod["message"]) if pod else None,
            waiting=_waiting(job, pods),
            completions=job.get("completions", 1),
            parallelism=job.get("parallelism", 1),
            completed_indexes=frozenset(job.get("completedIndexes", ())),
        )
    return states
