"""Indexed Jobs in the emulator: per-index pods, parallelism, completedIndexes, per-index
failure, as Kubernetes documents them ("Jobs" → "Completion mode", "Backoff limit per index",
"Pod failure policy")."""

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from hlsforge_dev import JOBS, PODS, EmulatedCluster, JobRunner
from hlsforge_dev.indexed import parse_indexes

INDEX = "batch.kubernetes.io/job-completion-index"
# One attempt of one index: records when it ran in OUT/<index>.<attempt>, writes its index as
# the termination message, then does what PLAN (JSON: index → behaviour) says ("ok" if absent).
WORKER = """
import json, os, pathlib, sys, time
out, plan = pathlib.Path(sys.argv[1]), json.loads(sys.argv[2])
index = os.environ["JOB_COMPLETION_INDEX"]
attempt = len(list(out.glob(f"{index}.*")))
record = out / f"{index}.{attempt}"
record.write_text(json.dumps({"start": time.time(), "pid": os.getpid()}))
pathlib.Path(os.environ["HLSFORGE_TERMINATION_LOG"]).write_text(index)
todo = plan.get(index, "ok")
if todo == "hang" or (todo == "hang-once" and attempt == 0):
    time.sleep(60)
time.sleep(0.3)
record.write_text(json.dumps({**json.loads(record.read_text()), "end": time.time()}))
if todo == "fail" or (todo == "fail-once" and attempt == 0):
    sys.exit(1)
if todo.startswith("exit"):
    sys.exit(int(todo[4:]))
"""


def indexed_job(
    name: str, out: Path, plan: dict[int, str], *, completions: int, parallelism: int, **spec: Any
) -> dict[str, Any]:
    """An Indexed Job shaped like the operator's: FailJob on exit code 2, Ignore on disruption."""
    container = {
        "name": "worker",
        "image": "hlsforge/transcoder",
        "command": [sys.executable, "-c", WORKER, str(out), json.dumps(plan)],
    }
    rules: list[dict[str, Any]] = [
        {"action": "FailJob",
         "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    ]  # fmt: skip
    rules += spec.pop("extra_rules", [])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": parallelism,
            "backoffLimit": 3,
            "podFailurePolicy": {"rules": rules},
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            **spec,
        },
    }


def runs(out: Path) -> dict[int, list[dict[str, Any]]]:
    """Each index's attempts, in order, as the worker recorded them."""
    found: dict[int, list[dict[str, Any]]] = {}
    for record in sorted(out.iterdir(), key=lambda p: [int(n) for n in p.name.split(".")]):
        index = int(record.name.split(".")[0])
        found.setdefault(index, []).append(json.loads(record.read_text()))
    return found


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals that overlap."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        time.sleep(0.05)


def finished(
    cluster: EmulatedCluster, name: str, timeout: float = 40, active: list[int] | None = None
) -> dict[str, Any]:
    """The Job once it has finished; `active` gets `status.active` as seen meanwhile."""

    def done(obj: dict[str, Any] | None) -> bool:
        status = (obj or {}).get("status") or {}
        if active is not None:
            active.append(int(status.get("active") or 0))
        conditions = status.get("conditions") or []
        return any(c["type"] in ("Complete", "Failed") for c in conditions)

    obj = cluster.wait_for(JOBS, "default", name, done, timeout=timeout)
    assert obj is not None
    return obj


def conditions(job: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["type"], c.get("reason", "")) for c in job["status"]["conditions"]]


def pods_of(cluster: EmulatedCluster, name: str) -> list[dict[str, Any]]:
    return cluster.list(PODS, "default", labels=f"batch.kubernetes.io/job-name={name}")


def pods_by_index(cluster: EmulatedCluster, name: str) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for pod in pods_of(cluster, name):
        found.setdefault(int(pod["metadata"]["annotations"][INDEX]), []).append(pod)
    return found


def exit_code(pod: dict[str, Any]) -> int:
    return int(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def runner(cluster: EmulatedCluster) -> Iterator[JobRunner]:
    with JobRunner(cluster) as started:
        yield started


@pytest.fixture
def batch(api: kubernetes.client.ApiClient) -> Any:
    return kubernetes.client.BatchV1Api(api)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


def test_the_emulator_reads_index_strings_as_kubernetes_does() -> None:
    assert parse_indexes("1,3-5,7,9,10", 20) == {1, 3, 4, 5, 7, 9, 10}
    assert parse_indexes("", 4) == set()
    assert parse_indexes("0-2,x,6-9", 8) == {0, 1, 2, 6, 7}  # corrupt parts and overflow ignored


@pytest.mark.usefixtures("runner")
def test_each_index_runs_once_at_most_parallelism_at_a_time(
    cluster: EmulatedCluster, batch: Any, out: Path
) -> None:
    batch.create_namespaced_job("default", indexed_job("ix", out, {}, completions=4, parallelism=2))
    active: list[int] = []
    done = finished(cluster, "ix", active=active)
    assert max(active) == 2
    assert conditions(done) == [
        ("SuccessCriteriaMet", "CompletionsReached"),
        ("Complete", "CompletionsReached"),
    ]
    status = batch.read_namespaced_job_status("ix", "default").to_dict()["status"]
    assert (status["completed_indexes"], status["succeeded"]) == ("0-3", 4)
    assert (status["failed"], status["active"]) == (None, None)
    attempts = runs(out)
    assert {index: len(tries) for index, tries in attempts.items()} == {0: 1, 1: 1, 2: 1, 3: 1}
    intervals = [(run["start"], run["end"]) for tries in attempts.values() for run in tries]
    assert most_at_once(intervals) <= 2  # processes, as they ran
    first_two = sorted(attempts, key=lambda index: attempts[index][0]["start"])[:2]
    assert sorted(first_two) == [0, 1]  # lower indexes start first
    pods = pods_by_index(cluster, "ix")
    assert sorted(pods) == [0, 1, 2, 3]
    for index, [pod] in pods.items():
        meta, spec = pod["metadata"], pod["spec"]
        assert meta["name"].startswith(f"ix-{index}-")
        assert len(meta["name"]) == len(f"ix-{index}-") + 5
        assert meta["labels"][INDEX] == str(index)
        assert spec["hostname"] == f"ix-{index}"
        field = {"fieldRef": {"fieldPath": f"metadata.labels['{INDEX}']"}}
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": field} in spec["containers"][0]["env"]
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (terminated["exitCode"], terminated["message"]) == (0, str(index))


@pytest.mark.usefixtures("runner")
def test_a_failed_index_is_retried_alone(cluster: EmulatedCluster, out: Path) -> None:
    cluster.create(JOBS, indexed_job("retry", out, {1: "fail-once"}, completions=3, parallelism=3))
    done = finished(cluster, "retry")
    assert conditions(done)[-1] == ("Complete", "CompletionsReached")
    status = done["status"]
    assert (status["completedIndexes"], status["succeeded"], status["failed"]) == ("0-2", 3, 1)
    assert {index: len(tries) for index, tries in runs(out).items()} == {0: 1, 1: 2, 2: 1}
    pods = pods_by_index(cluster, "retry")
    assert [len(pods[index]) for index in range(3)] == [1, 2, 1]
    assert sorted(exit_code(pod) for pod in pods[1]) == [0, 1]


@pytest.mark.usefixtures("runner")
def test_without_backoff_limit_per_index_the_job_wide_limit_counts_every_failure(
    cluster: EmulatedCluster, out: Path
) -> None:
    plan = {0: "fail", 1: "fail"}
    cluster.create(JOBS, indexed_job("wide", out, plan, completions=3, parallelism=2))
    done = finished(cluster, "wide")
    assert conditions(done)[-1] == ("Failed", "BackoffLimitExceeded")
    assert done["status"]["failed"] == 4  # backoffLimit 3: the fourth failure ends the Job
    assert "failedIndexes" not in done["status"]


def test_an_evicted_pod_is_replaced_without_counting_a_failure(
    cluster: EmulatedCluster, runner: JobRunner, out: Path
) -> None:
    spec = indexed_job(
        "evicted", out, {1: "hang-once"}, completions=2, parallelism=2, backoffLimitPerIndex=0
    )
    cluster.create(JOBS, spec)
    eventually((out / "1.0").exists)
    [first] = pods_by_index(cluster, "evicted")[1]
    assert runner.evict_pod("default", first["metadata"]["name"])
    done = finished(cluster, "evicted")
    assert conditions(done)[-1] == ("Complete", "CompletionsReached")
    assert (done["status"]["completedIndexes"], done["status"]["failedIndexes"]) == ("0,1", "")
    assert "failed" not in done["status"]  # the Ignore rule matched DisruptionTarget
    name = first["metadata"]["name"]
    [second] = [p for p in pods_by_index(cluster, "evicted")[1] if p["metadata"]["name"] != name]
    annotations = second["metadata"]["annotations"]
    assert annotations["batch.kubernetes.io/job-index-failure-count"] == "0"
    assert annotations["batch.kubernetes.io/job-index-ignored-failure-count"] == "1"


@pytest.mark.usefixtures("runner")
def test_an_index_out_of_retries_fails_while_the_others_complete(
    cluster: EmulatedCluster, out: Path
) -> None:
    spec = indexed_job(
        "perindex", out, {2: "fail"}, completions=4, parallelism=2, backoffLimitPerIndex=1
    )
    del spec["spec"]["backoffLimit"]  # defaulted to "unlimited" with backoffLimitPerIndex
    cluster.create(JOBS, spec)
    done = finished(cluster, "perindex")
    assert conditions(done) == [("FailureTarget", "FailedIndexes"), ("Failed", "FailedIndexes")]
    status = done["status"]
    assert (status["completedIndexes"], status["failedIndexes"]) == ("0,1,3", "2")
    assert (status["succeeded"], status["failed"]) == (3, 2)
    assert {index: len(tries) for index, tries in runs(out).items()} == {0: 1, 1: 1, 2: 2, 3: 1}
    failures = sorted(
        pod["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"]
        for pod in pods_by_index(cluster, "perindex")[2]
    )
    assert failures == ["0", "1"]


@pytest.mark.usefixtures("runner")
def test_fail_index_beyond_max_failed_indexes_stops_the_job(
    cluster: EmulatedCluster, out: Path
) -> None:
    fail_index = {
        "action": "FailIndex",
        "onExitCodes": {"containerName": "worker", "operator": "In", "values": [42]},
    }
    plan = {0: "exit42", 1: "hang"}
    spec = indexed_job(
        "maxfailed",
        out,
        plan,
        completions=4,
        parallelism=2,
        backoffLimitPerIndex=3,
        maxFailedIndexes=0,
        extra_rules=[fail_index],
    )
    cluster.create(JOBS, spec)
    done = finished(cluster, "maxfailed")
    assert conditions(done)[-1] == ("Failed", "MaxFailedIndexesExceeded")
    assert done["status"]["failedIndexes"] == "0"
    eventually(
        lambda: all(p["status"]["phase"] != "Running" for p in pods_of(cluster, "maxfailed"))
    )
    attempts = runs(out)
    assert len(attempts[0]) == 1  # FailIndex: no retry, whatever backoffLimitPerIndex allows
    assert set(attempts) <= {0, 1}  # indexes 2 and 3 never started
    assert all(gone(run["pid"]) for run in attempts.get(1, []))  # stopped (if it had started)


@pytest.mark.usefixtures("runner")
def test_exit_code_2_fails_the_whole_job_at_once(cluster: EmulatedCluster, out: Path) -> None:
    plan = {0: "hang", 1: "exit2"}
    cluster.create(JOBS, indexed_job("bad", out, plan, completions=4, parallelism=2))
    done = finished(cluster, "bad")
    assert conditions(done) == [
        ("FailureTarget", "PodFailurePolicy"),
        ("Failed", "PodFailurePolicy"),
    ]
    assert done["status"]["failed"] == 1
    assert "completedIndexes" not in done["status"]
    eventually(lambda: all(p["status"]["phase"] != "Running" for p in pods_of(cluster, "bad")))
    attempts = runs(out)
    assert set(attempts) <= {0, 1}  # indexes 2 and 3 never started
    assert all(gone(run["pid"]) for run in attempts.get(0, []))  # stopped (if it had started)
    assert exit_code(pods_by_index(cluster, "bad")[1][0]) == 2


@pytest.mark.usefixtures("runner")
def test_deleting_an_indexed_job_deletes_every_pod(cluster: EmulatedCluster, out: Path) -> None:
    plan = {0: "hang", 1: "hang", 2: "hang"}
    cluster.create(JOBS, indexed_job("doomed", out, plan, completions=3, parallelism=3))
    eventually(lambda: len(list(out.iterdir())) == 3)
    pids = [tries[0]["pid"] for tries in runs(out).values()]
    cluster.delete(JOBS, "default", "doomed", propagation="Background")
    eventually(lambda: not pods_of(cluster, "doomed"))
    assert all(gone(pid) for pid in pids)


def test_the_api_refuses_invalid_indexed_jobs(batch: Any, out: Path) -> None:
    no_completions = indexed_job("nocount", out, {}, completions=1, parallelism=1)
    del no_completions["spec"]["completions"]
    per_index_without_indexed = indexed_job(
        "nonindexed", out, {}, completions=1, parallelism=1, backoffLimitPerIndex=1
    )
    per_index_without_indexed["spec"]["completionMode"] = "NonIndexed"
    fail_index = {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}}
    fail_index_alone = indexed_job(
        "failindex", out, {}, completions=1, parallelism=1, extra_rules=[fail_index]
    )
    for body, message in [
        (no_completions, "spec.completions: Required value: when completion mode is Indexed"),
        (
            per_index_without_indexed,
            "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode",
        ),
        (
            fail_index_alone,
            'spec.podFailurePolicy.rules[2].action: Invalid value: "FailIndex": '
            "requires the backoffLimitPerIndex to be set",
        ),
    ]:
        with pytest.raises(kubernetes.client.ApiException) as refused:
            batch.create_namespaced_job("default", body)
        assert refused.value.status == 422
        assert message in json.loads(str(refused.value.body))["message"]
