import json

from transcode_operator.observe import (
    job_entry,
    job_states,
    parse_termination_message,
    pod_entry,
    pod_job_name,
)

LABELS = {"hlsforge.dev/role": "rendition", "hlsforge.dev/transcode": "v1"}


def test_job_entry_reads_counts_and_final_conditions() -> None:
    running = job_entry("v1-720p", LABELS, {"active": 1, "failed": 1})
    assert running == {
        "name": "v1-720p", "role": "rendition", "active": 1, "succeeded": 0, "failed": 1,
        "complete": False, "failedForGood": False, "reason": "",
    }  # fmt: skip
    failed = job_entry(
        "v1-720p", LABELS,
        {"failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True"},
            {"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
             "message": "Container worker for pod default/v1-720p-abcde failed with exit code 2"},
        ]},
    )  # fmt: skip
    assert failed["failedForGood"]
    assert "exit code 2" in failed["reason"]
    assert job_entry("j", LABELS, {"conditions": [{"type": "Complete", "status": "True"}]})[
        "complete"
    ]


def test_pod_entries_exist_only_once_the_worker_has_finished() -> None:
    assert (
        pod_entry("p", {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]})
        is None
    )
    done = pod_entry(
        "p",
        {"containerStatuses": [{"state": {"terminated": {
            "exitCode": 0, "message": "{}", "finishedAt": "2026-11-24T10:00:00Z"}}}]},
    )  # fmt: skip
    assert done == {
        "name": "p",
        "exitCode": 0,
        "message": "{}",
        "finishedAt": "2026-11-24T10:00:00Z",
    }
    assert pod_job_name({"batch.kubernetes.io/job-name": "v1-720p"}) == "v1-720p"
    assert pod_job_name({"job-name": "v1-720p"}) == "v1-720p"
    assert pod_job_name({}) is None


def test_termination_messages_give_the_result_or_the_error() -> None:
    done = {"event": "done", "command": "rendition", "result": {"name": "720p"}}
    assert parse_termination_message(json.dumps(done)) == {"name": "720p"}
    error = {"event": "error", "message": "the file is empty (0 bytes)", "exitCode": 2}
    assert parse_termination_message(json.dumps(error))["message"] == "the file is empty (0 bytes)"
    assert parse_termination_message("Traceback ...\nMemoryError\n") == {
        "message": "Traceback ...\nMemoryError"
    }
    assert parse_termination_message("") == {}


def test_a_completed_job_takes_its_successful_pods_result() -> None:
    complete = {"type": "Complete", "status": "True"}
    job = job_entry("v1-720p", LABELS, {"succeeded": 1, "failed": 1, "conditions": [complete]})
    pods = [
        {"name": "a", "exitCode": 137, "message": "killed", "finishedAt": "2026-11-24T10:00:00Z"},
        {"name": "b", "exitCode": 0, "finishedAt": "2026-11-24T10:01:00Z",
         "message": json.dumps({"event": "done", "result": {"name": "720p"}})},
    ]  # fmt: skip
    state = job_states([job], {"v1-720p": pods})["v1-720p"]
    assert state.complete
    assert state.attempts == 2
    assert state.result == {"name": "720p"}
