import json
from typing import Any

from transcode_operator.observe import (
    finished,
    job_entry,
    job_states,
    parse_termination_message,
    pod_entry,
    pod_job_name,
)

LABELS = {"hlsforge.dev/role": "rendition", "hlsforge.dev/transcode": "v1"}


def test_job_entry_reads_counts_and_final_conditions() -> None:
    running = job_entry("v1-720p", LABELS, {}, {"active": 1, "failed": 1})
    assert running == {
        "name": "v1-720p", "role": "rendition", "active": 1, "succeeded": 0, "failed": 1,
        "complete": False, "failedForGood": False, "reason": "",
        "completions": 1, "parallelism": 1, "completedIndexes": [],
    }  # fmt: skip
    failed = job_entry(
        "v1-720p", LABELS, {},
        {"failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True"},
            {"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
             "message": "Container worker for pod default/v1-720p-abcde failed with exit code 2"},
        ]},
    )  # fmt: skip
    assert failed["failedForGood"]
    assert "exit code 2" in failed["reason"]
    assert job_entry("j", LABELS, {}, {"conditions": [{"type": "Complete", "status": "True"}]})[
        "complete"
    ]


def test_pod_entries_say_whether_the_worker_runs_and_how_it_ended() -> None:
    running = {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}
    assert pod_entry("p", running) == {"name": "p", "phase": "Running", "waiting": None}
    done = pod_entry(
        "p",
        {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {
            "exitCode": 0, "message": "{}", "finishedAt": "2026-11-24T10:00:00Z"}}}]},
    )  # fmt: skip
    assert done == {
        "name": "p",
        "phase": "Succeeded",
        "waiting": None,
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
    job = job_entry("v1-720p", LABELS, {}, {"succeeded": 1, "failed": 1, "conditions": [complete]})
    pods = [
        {"name": "a", "exitCode": 137, "message": "killed", "finishedAt": "2026-11-24T10:00:00Z"},
        {"name": "b", "exitCode": 0, "finishedAt": "2026-11-24T10:01:00Z",
         "message": json.dumps({"event": "done", "result": {"name": "720p"}})},
    ]  # fmt: skip
    state = job_states([job], {"v1-720p": pods})["v1-720p"]
    assert state.complete
    assert state.attempts == 2
    assert state.result == {"name": "720p"}


UNSCHEDULABLE: dict[str, Any] = {
    "phase": "Pending",
    "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                   "available: 3 No preemption victims found for incoming pod.",
    }],
}  # fmt: skip
IMAGE_PULL: dict[str, Any] = {
    "phase": "Pending",
    "conditions": [{"type": "PodScheduled", "status": "True"}],
    "containerStatuses": [{"state": {"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "hlsforge/x:1"'}}}],
}  # fmt: skip


def test_a_pending_pod_says_why_its_worker_has_not_started() -> None:
    assert pod_entry("p", UNSCHEDULABLE)["waiting"] == UNSCHEDULABLE["conditions"][0]["message"]
    assert pod_entry("p", IMAGE_PULL)["waiting"] == (
        'ImagePullBackOff: Back-off pulling image "hlsforge/x:1"'
    )
    assert pod_entry("p", {"phase": "Pending"})["waiting"] == ""  # not scheduled yet: no reason
    assert not finished(pod_entry("p", UNSCHEDULABLE))


def test_a_job_whose_pod_has_not_started_is_waiting_with_the_schedulers_reason() -> None:
    job = job_entry("v1-720p", LABELS, {}, {"active": 1})
    pending = job_states([job], {"v1-720p": [pod_entry("v1-720p-a", UNSCHEDULABLE)]})
    assert pending["v1-720p"].waiting == UNSCHEDULABLE["conditions"][0]["message"]
    unseen = job_states([job], {})  # the pod's event has not arrived yet
    assert unseen["v1-720p"].waiting == ""
    running = pod_entry("v1-720p-b", {"phase": "Running"})
    retried = job_states([job], {"v1-720p": [running]})  # a later attempt runs
    assert retried["v1-720p"].waiting is None
    done = job_entry("v1-720p", LABELS, {}, {"succeeded": 1})
    assert job_states([done], {})["v1-720p"].waiting is None


def test_a_failed_indexed_job_reports_the_slice_that_failed_it_in_its_own_words() -> None:
    """Slices that succeeded, and those stopped because the Job failed, finish later."""
    failed = {"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
              "message": "Container worker for pod v1-720p-1 failed with exit code 2"}  # fmt: skip
    job = job_entry("v1-720p", LABELS, {"completionMode": "Indexed", "completions": 3},
                    {"failed": 2, "succeeded": 1, "conditions": [failed]})  # fmt: skip
    words = '{"event": "error", "message": "the source is truncated at 14 s"}'
    pods = [
        {"name": "a", "phase": "Failed", "waiting": None, "exitCode": 2, "message": words,
         "finishedAt": "2026-12-02T10:00:01Z"},
        {"name": "b", "phase": "Failed", "waiting": None, "exitCode": 137, "message": "",
         "finishedAt": "2026-12-02T10:00:02Z"},
        {"name": "c", "phase": "Succeeded", "waiting": None, "exitCode": 0,
         "message": '{"event": "done", "result": {"index": 0}}',
         "finishedAt": "2026-12-02T10:00:03Z"},
    ]  # fmt: skip
    state = job_states([job], {"v1-720p": pods})["v1-720p"]
    assert state.failed_for_good
    assert state.error == "the source is truncated at 14 s"
    assert state.completions == 3
