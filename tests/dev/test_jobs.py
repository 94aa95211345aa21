"""JobRunner: Jobs run as local processes, with the Job controller's status and retries."""

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import make_clip
from hlsforge_dev import JOBS, PODS, SECRETS, EmulatedCluster, JobRunner, completes_at_once

PYTHON = sys.executable
# Hangs on its first run (until killed), succeeds on the next: argv[1] marks the first run.
FLAKY = """
import os, sys, time
if os.path.exists(sys.argv[1]):
    sys.exit(0)
print("working", flush=True)
open(sys.argv[1], "w").close()  # after the print: a test that sees the mark sees the log line
time.sleep(60)
"""


def job(
    name: str,
    command: list[str],
    args: Sequence[str] = (),
    *,
    backoff_limit: int = 3,
    **spec: Any,
) -> dict[str, Any]:
    """A Job shaped like the operator's: FailJob on exit code 2, Ignore on disruption."""
    container = {
        "name": "worker",
        "image": "hlsforge/transcoder",
        "command": command,
        "args": list(args),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
        "env": [{"name": "HLSFORGE_SCRATCH_DIR", "value": "/scratch"}],
    }
    policy = {
        "rules": [
            {"action": "FailJob",
             "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2]}},
            {"action": "Ignore",
             "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        ]
    }  # fmt: skip
    pod_spec = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "scratch", "emptyDir": {}}],
    }
    return {
        "metadata": {"name": name, "labels": {"app": "hlsforge"}},
        "spec": {
            "backoffLimit": backoff_limit,
            "podFailurePolicy": policy,
            "template": {"metadata": {"labels": {"app": "hlsforge"}}, "spec": pod_spec},
            **spec,
        },
    }


def condition(obj: dict[str, Any] | None) -> str | None:
    """The finishing condition of a Job ("Complete"/"Failed") once it has one."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
            return str(cond["type"])
    return None


def finished(cluster: EmulatedCluster, name: str, timeout: float = 30) -> dict[str, Any]:
    obj = cluster.wait_for(JOBS, "default", name, lambda o: bool(condition(o)), timeout=timeout)
    assert obj is not None
    return obj


def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        time.sleep(0.05)


def pods_of(cluster: EmulatedCluster, name: str) -> list[dict[str, Any]]:
    return cluster.list(PODS, "default", labels=f"batch.kubernetes.io/job-name={name}")


def running_pod(cluster: EmulatedCluster, name: str) -> dict[str, Any]:
    running: list[dict[str, Any]] = []

    def check() -> bool:
        running[:] = [p for p in pods_of(cluster, name) if p["status"]["phase"] == "Running"]
        return bool(running)

    eventually(check, timeout=20)
    return running[0]


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


@pytest.fixture
def runner(cluster: EmulatedCluster) -> Iterator[JobRunner]:
    with JobRunner(cluster) as started:
        yield started


@pytest.mark.usefixtures("runner")
def test_probe_job_completes_with_the_result_as_termination_message(
    cluster: EmulatedCluster, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=1)
    cluster.create(JOBS, job("probe", ["hlsforge-worker"], ["probe", str(clip)]))
    done = finished(cluster, "probe")
    assert condition(done) == "Complete"
    assert done["status"]["succeeded"] == 1
    assert done["status"]["startTime"] <= done["status"]["completionTime"]
    [pod] = pods_of(cluster, "probe")
    assert pod["metadata"]["name"].startswith("probe-")
    assert pod["metadata"]["labels"]["job-name"] == "probe"
    assert pod["metadata"]["labels"]["app"] == "hlsforge"
    [owner] = pod["metadata"]["ownerReferences"]
    assert owner["uid"] == done["metadata"]["uid"]
    assert (owner["kind"], owner["controller"]) == ("Job", True)
    assert pod["status"]["phase"] == "Succeeded"
    state = terminated(pod)
    assert (state["exitCode"], state["reason"]) == (0, "Completed")
    result = json.loads(state["message"])
    assert result["event"] == "done"
    assert result["result"]["source"]["video"]["width"] == 640


def test_log_follow_streams_lines_while_the_container_runs(
    core: Any, cluster: EmulatedCluster, runner: JobRunner, tmp_path: Path
) -> None:
    # The container prints a line, then waits for the test to have read it before it ends.
    script = """
import os, sys, time
print("waiting", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
print("done", flush=True)
"""
    go = tmp_path / "go"
    cluster.create(JOBS, job("talk", [PYTHON, "-c", script, str(go)]))
    name = running_pod(cluster, "talk")["metadata"]["name"]
    response = core.read_namespaced_pod_log(name, "default", follow=True, _preload_content=False)
    chunks = response.stream(amt=1024)
    line = next(chunks)
    while not line.endswith(b"\n"):  # a line may come in more than one chunk
        line += next(chunks)
    assert line == b"waiting\n"  # live: the container is still running
    go.touch()
    assert b"".join(chunks) == b"done\n"  # and the stream ends with the container
    response.release_conn()
    assert cluster.get(PODS, "default", name)["status"]["phase"] == "Succeeded"
    assert condition(finished(cluster, "talk")) == "Complete"


@pytest.mark.usefixtures("runner")
def test_bad_input_fails_at_once_through_the_pod_failure_policy(
    cluster: EmulatedCluster, tmp_path: Path
) -> None:
    corrupt = tmp_path / "notes.mp4"
    corrupt.write_text("this is not a video\n")
    cluster.create(JOBS, job("bad", ["hlsforge-worker"], ["probe", str(corrupt)]))
    failed = finished(cluster, "bad")
    assert condition(failed) == "Failed"
    reasons = {c["type"]: c["reason"] for c in failed["status"]["conditions"]}
    assert reasons == {"FailureTarget": "PodFailurePolicy", "Failed": "PodFailurePolicy"}
    assert failed["status"]["failed"] == 1
    [pod] = pods_of(cluster, "bad")  # no retry
    state = terminated(pod)
    assert state["exitCode"] == 2
    assert json.loads(state["message"])["reason"] == "BadInput"


def test_a_killed_pod_is_retried_under_the_backoff_limit(
    cluster: EmulatedCluster, runner: JobRunner, tmp_path: Path
) -> None:
    cluster.create(JOBS, job("flaky", [PYTHON, "-c", FLAKY, str(tmp_path / "mark")]))
    first = running_pod(cluster, "flaky")
    eventually((tmp_path / "mark").exists)  # a pod runs before its process does
    assert runner.kill_pod("default", first["metadata"]["name"])
    done = finished(cluster, "flaky")
    assert condition(done) == "Complete"
    assert (done["status"]["failed"], done["status"]["succeeded"]) == (1, 1)
    killed = cluster.get(PODS, "default", first["metadata"]["name"])
    assert (killed["status"]["phase"], terminated(killed)["exitCode"]) == ("Failed", 137)
    assert terminated(killed)["message"] == "working\n"  # FallbackToLogsOnError: the log tail
    assert len(pods_of(cluster, "flaky")) == 2


def test_an_evicted_pod_does_not_count_as_a_failure(
    cluster: EmulatedCluster, runner: JobRunner, tmp_path: Path
) -> None:
    cluster.create(JOBS, job("evicted", [PYTHON, "-c", FLAKY, str(tmp_path / "mark")]))
    first = running_pod(cluster, "evicted")
    eventually((tmp_path / "mark").exists)
    assert runner.evict_pod("default", first["metadata"]["name"])
    done = finished(cluster, "evicted")
    assert condition(done) == "Complete"
    assert "failed" not in done["status"]  # the Ignore rule matched DisruptionTarget


@pytest.mark.usefixtures("runner")
def test_backoff_limit_and_active_deadline_fail_the_job(cluster: EmulatedCluster) -> None:
    cluster.create(JOBS, job("crash", [PYTHON, "-c", "raise SystemExit(1)"], backoff_limit=1))
    slow = job("slow", [PYTHON, "-c", "import time; time.sleep(60)"], activeDeadlineSeconds=1)
    cluster.create(JOBS, slow)
    crashed = finished(cluster, "crash")
    assert condition(crashed) == "Failed"
    assert crashed["status"]["conditions"][-1]["reason"] == "BackoffLimitExceeded"
    assert crashed["status"]["failed"] == 2
    timed_out = finished(cluster, "slow", timeout=10)
    assert timed_out["status"]["conditions"][-1]["reason"] == "DeadlineExceeded"
    eventually(lambda: not pods_of(cluster, "slow"))  # deleted, its process killed


@pytest.mark.usefixtures("runner")
def test_env_resolves_secrets_and_maps_container_paths(cluster: EmulatedCluster) -> None:
    script = (
        "import os, pathlib\n"
        "scratch = pathlib.Path(os.environ['HLSFORGE_SCRATCH_DIR'])\n"
        "pathlib.Path(os.environ['HLSFORGE_TERMINATION_LOG']).write_text("
        "os.environ['KEY'] + '|' + os.environ['GREETING'] + '|' + str(scratch.is_dir()))\n"
    )
    spec = job("env", [PYTHON, "-c", script])
    env = spec["spec"]["template"]["spec"]["containers"][0]["env"]
    env += [
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "accessKeyId"}}},
        {"name": "GREETING", "value": "key=$(KEY)"},
    ]
    cluster.create(JOBS, spec)

    def waiting_reason() -> str | None:
        pods = pods_of(cluster, "env")
        statuses = pods[0]["status"].get("containerStatuses") if pods else None
        return statuses[0]["state"]["waiting"]["reason"] if statuses else None

    eventually(lambda: waiting_reason() == "CreateContainerConfigError")
    cluster.create(SECRETS, {"metadata": {"name": "s3"}, "stringData": {"accessKeyId": "AKIA"}})
    done = finished(cluster, "env")
    [pod] = pods_of(cluster, "env")
    assert terminated(pod)["message"] == "AKIA|key=AKIA|True"
    assert condition(done) == "Complete"


def test_max_parallel_keeps_other_pods_pending(cluster: EmulatedCluster, tmp_path: Path) -> None:
    with JobRunner(cluster, max_parallel=1):
        sleeper = [PYTHON, "-c", "import time; time.sleep(0.5)"]
        cluster.create(JOBS, job("one", sleeper))
        running_pod(cluster, "one")
        cluster.create(JOBS, job("two", sleeper))

        def queued() -> bool:
            pods = pods_of(cluster, "two")
            conditions = pods[0]["status"].get("conditions") or [] if pods else []
            return any(c.get("reason") == "Unschedulable" for c in conditions)

        eventually(queued)
        assert pods_of(cluster, "one")[0]["status"]["phase"] == "Running"
        assert condition(finished(cluster, "two")) == "Complete"


def test_deleting_the_job_kills_its_process(
    cluster: EmulatedCluster, runner: JobRunner, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    script = "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)"
    cluster.create(JOBS, job("doomed", [PYTHON, "-c", script, str(pid_file)]))
    running_pod(cluster, "doomed")
    eventually(lambda: pid_file.exists() and bool(pid_file.read_text()))
    pid = int(pid_file.read_text())
    cluster.delete(JOBS, "default", "doomed", propagation="Background")

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    eventually(gone)
    eventually(lambda: not pods_of(cluster, "doomed"))  # graceful: removed once it stopped


def test_a_run_pod_hook_completes_pods_at_once(cluster: EmulatedCluster) -> None:
    seen: list[tuple[str, ...]] = []
    lock = threading.Lock()

    def message(run: Any) -> str:
        with lock:
            seen.append(run.args)
        return json.dumps({"event": "done", "command": run.args[0]})

    with JobRunner(cluster, run_pod=completes_at_once(message), max_parallel=50):
        for index in range(20):
            cluster.create(JOBS, job(f"fast-{index}", ["hlsforge-worker"], ["probe", "s3://b/k"]))
        for index in range(20):
            done = finished(cluster, f"fast-{index}", timeout=10)
            assert condition(done) == "Complete"
    [pod] = pods_of(cluster, "fast-7")
    assert json.loads(terminated(pod)["message"]) == {"event": "done", "command": "probe"}
    assert sorted(set(seen)) == [("probe", "s3://b/k")]
