"""Indexed Jobs (`completionMode: Indexed`): the Job controller's pure bookkeeping.

What Kubernetes documents under "Jobs" → "Completion mode", "Backoff limit per index" and
"Pod failure policy", as the `JobRunner` applies it:

- each index 0..completions-1 succeeds exactly once; at most `parallelism` pods are in flight
  (a pod being deleted keeps its slot and its index until it has stopped); the lowest pending
  indexes start first;
- a pod of index i is `<job>-<i>-<5 chars>` with hostname `<job>-<i>`, the annotation and label
  `batch.kubernetes.io/job-completion-index`, and `JOB_COMPLETION_INDEX` in every container
  (a fieldRef to that label, unless the container sets it itself);
- `status.completedIndexes` and `status.failedIndexes` are compressed interval strings
  ("0-2,4", two neighbours as "5,6"), as the controller writes them; `succeeded` counts
  indexes, `failed` counts failed pods;
- with `backoffLimitPerIndex` each pod carries `batch.kubernetes.io/job-index-failure-count`
  (and `...-ignored-failure-count`): an index whose counted failures exceed the limit, or whose
  pod matched a `FailIndex` rule, is failed and not retried; the Job fails with
  `MaxFailedIndexesExceeded` as soon as more than `maxFailedIndexes` failed, else with
  `FailedIndexes` once every index has either succeeded or failed;
- without `backoffLimitPerIndex` the Job-wide `backoffLimit` counts every failed pod; with it,
  `backoffLimit` defaults to unlimited; `FailJob` and `Ignore` rules act as for NonIndexed
  Jobs, and an ignored failure is replaced without counting;
- the API refuses (422) what `ValidateJobSpec` refuses in these fields (`spec_errors`).

Not emulated: `successPolicy`, suspending and resuming, changing `completions` (elastic
Indexed Jobs), immutability of these fields on update, `podReplacementPolicy:
TerminatingOrFailed` (a pod being deleted is replaced once it has stopped), the exponential
delay before a retry, and `FailureTarget` before the pods have stopped (both conditions are
written at once, as for NonIndexed Jobs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
INDEX_ENV = "JOB_COMPLETION_INDEX"
UNLIMITED = 2**31 - 1  # the backoffLimit default when backoffLimitPerIndex is set
MAX_PARALLELISM = 100_000  # for Indexed Jobs


def is_indexed(spec: Mapping[str, Any]) -> bool:
    return spec.get("completionMode") == "Indexed"


# Interval strings


def parse_indexes(text: str | None, completions: int) -> set[int]:
    """The indexes of an interval string, those at or above `completions` dropped."""
    indexes: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if last else low
        except ValueError:  # corrupted: ignored, as the controller does
            continue
        indexes.update(range(low, min(high, completions - 1) + 1))
    return indexes


# Pods


def completion_index(pod: Mapping[str, Any]) -> int | None:
    """The pod's index from its annotation (None if absent or not a number)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX)
    try:
        index = int(str(value))
    except ValueError:
        return None
    return index if index >= 0 else None


def failure_counts(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(counted, ignored) failures of the pod's index before this pod."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}

    def number(key: str) -> int:
        try:
            return max(int(str(annotations.get(key, 0))), 0)
        except ValueError:
            return 0

    return number(FAILURE_COUNT), number(IGNORED_FAILURE_COUNT)


def with_index(pod: dict[str, Any], job_name: str, index: int) -> dict[str, Any]:
    """The Job's pod (as for a NonIndexed Job) made the pod of one index."""
    meta = dict(pod["metadata"])
    meta["generateName"] = f"{job_name}-{index}-"
    meta["labels"] = {**(meta.get("labels") or {}), COMPLETION_INDEX: str(index)}
    meta["annotations"] = {**(meta.get("annotations") or {}), COMPLETION_INDEX: str(index)}
    spec = dict(pod.get("spec") or {})
    spec["hostname"] = f"{job_name}-{index}"
    env_var = {
        "name": INDEX_ENV,
        "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}},
    }
    for key in ("initContainers", "containers"):
        if key in spec:
            spec[key] = [
                container
                if any(var.get("name") == INDEX_ENV for var in container.get("env") or [])
                else {**container, "env": [*(container.get("env") or []), env_var]}
                for container in spec[key]
            ]
    return {**pod, "metadata": meta, "spec": spec}


def with_failure_counts(pod: dict[str, Any], counted: int, ignored: int) -> dict[str, Any]:
    """The failure-count annotations of a pod of a Job with backoffLimitPerIndex."""
    annotations = {**pod["metadata"]["annotations"], FAILURE_COUNT: str(counted)}
    if ignored:
        annotations[IGNORED_FAILURE_COUNT] = str(ignored)
    return {**pod, "metadata": {**pod["metadata"], "annotations": annotations}}


def pending_indexes(completions: int, taken: set[int], count: int) -> list[int]:
    """The `count` lowest indexes below `completions` that are not taken."""
    pending: list[int] = []
    index = 0
    while len(pending) < count and index < completions:
        if index not in taken:
            pending.append(index)
        index += 1
    return pending


# The Job


def index_failed(action: str, counted_before: int, backoff_limit_per_index: int | None) -> bool:
    """Whether a failed pod (its podFailurePolicy action, the index's counted failures
    before it) fails its index. Always False without backoffLimitPerIndex."""
    if backoff_limit_per_index is None:
        return False
    if action == "FailIndex":
        return True
    return action not in ("Ignore", "FailJob") and counted_before >= backoff_limit_per_index


def failed_indexes_outcome(
    spec: Mapping[str, Any], completed: set[int], failed: set[int]
) -> tuple[str, str] | None:
    """The failure (reason, message) the failed indexes give the Job, if any."""
    if spec.get("backoffLimitPerIndex") is None or not failed:
        return None
    max_failed = spec.get("maxFailedIndexes")
    if max_failed is not None and len(failed) > int(max_failed):
        return (
            "MaxFailedIndexesExceeded",
            "Job has exceeded the specified maximal number of failed indexes",
        )
    if len(completed | failed) >= int(spec["completions"]):
        return "FailedIndexes", "Job has failed indexes"
    return None


def backoff_limit(spec: Mapping[str, Any]) -> int:
    """The Job-wide backoffLimit, defaulted as the API server does."""
    default = UNLIMITED if spec.get("backoffLimitPerIndex") is not None else 6
    return int(spec.get("backoffLimit", default))


def spec_errors(spec: Mapping[str, Any]) -> list[str]:
    """What the API server refuses (422) in a Job's completion-mode fields, as
    `path: message`, in its order (batch/v1 `ValidateJobSpec`)."""
    errors: list[str] = []
    mode = spec.get("completionMode")
    per_index, max_failed = spec.get("backoffLimitPerIndex"), spec.get("maxFailedIndexes")
    for name, value in (("backoffLimitPerIndex", per_index), ("maxFailedIndexes", max_failed)):
        if isinstance(value, int) and value < 0:
            errors.append(
                f"spec.{name}: Invalid value: {value}: must be greater than or equal to 0"
            )
    if max_failed is not None and per_index is None:
        errors.append(
            "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified"
        )
    if mode not in (None, "NonIndexed", "Indexed"):
        errors.append(
            f'spec.completionMode: Unsupported value: "{mode}": '
            'supported values: "NonIndexed", "Indexed"'
        )
    if mode == "Indexed":
        errors += _indexed_errors(spec)
    elif mode in (None, "NonIndexed"):
        for name, value in (("backoffLimitPerIndex", per_index), ("maxFailedIndexes", max_failed)):
            if value is not None:
                errors.append(
                    f"spec.{name}: Invalid value: {value}: requires indexed completion mode"
                )
    rules = (spec.get("podFailurePolicy") or {}).get("rules") or []
    for number, rule in enumerate(rules):
        if rule.get("action") == "FailIndex" and per_index is None:
            errors.append(
                f'spec.podFailurePolicy.rules[{number}].action: Invalid value: "FailIndex": '
                "requires the backoffLimitPerIndex to be set"
            )
    return errors


def _indexed_errors(spec: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    completions, max_failed = spec.get("completions"), spec.get("maxFailedIndexes")
    parallelism = spec.get("parallelism")
    if completions is None:
        errors.append("spec.completions: Required value: when completion mode is Indexed")
    if isinstance(parallelism, int) and parallelism > MAX_PARALLELISM:
        errors.append(
            f"spec.parallelism: Invalid value: {parallelism}: must be less than or equal "
            f"to {MAX_PARALLELISM} when completion mode is Indexed"
        )
    if isinstance(completions, int) and isinstance(max_failed, int) and max_failed > completions:
        errors.append(
            f"spec.maxFailedIndexes: Invalid value: {max_failed}: "
            "must be less than or equal to completions"
        )
    return errors
