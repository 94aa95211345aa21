"""The emulated API server through real clients: the `kubernetes` package, kubectl and Kopf."""

import json
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import kopf
import kubernetes
import pytest
from hlsforge_dev import JOBS, PODS, VIDEOTRANSCODES, ApiError, EmulatedCluster
from kopf.testing import KopfRunner
from kubernetes.client import ApiException

from videotranscode import GROUP, KIND, PLURAL, VERSION

API_VERSION = f"{GROUP}/{VERSION}"


def transcode(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "labels": labels},
        "spec": {"source": {"bucket": "uploads", "key": f"{name}.mov"}},
    }


def pod(name: str, **labels: str) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox"}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"containers": [container]}}


def child(body: dict[str, Any], owner: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """`body` with a controller ownerReference to `owner` (and more metadata)."""
    ref = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "controller": True,
           "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}  # fmt: skip
    return {**body, "metadata": {**body["metadata"], "ownerReferences": [ref], **metadata}}


def test_objects_get_server_metadata_and_lists_a_resource_version(custom: Any) -> None:
    first = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, transcode("v1")
    )
    second = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, transcode("v2")
    )
    meta = first["metadata"]
    assert meta["namespace"] == "default"
    assert meta["generation"] == 1
    assert meta["creationTimestamp"].endswith("Z")
    assert uuid.UUID(meta["uid"]) != uuid.UUID(second["metadata"]["uid"])
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert listed["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]
    assert [item["metadata"]["name"] for item in listed["items"]] == ["v1", "v2"]
    with pytest.raises(ApiException) as conflict:
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, transcode("v1"))
    assert conflict.value.status == 409
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "nope")
    assert missing.value.status == 404


def test_label_selectors_and_generate_name(core: Any) -> None:
    core.create_namespaced_pod("default", pod("a", app="web", tier="front"))
    core.create_namespaced_pod("default", pod("b", app="web"))
    core.create_namespaced_pod("default", pod("c", app="db"))
    generated = core.create_namespaced_pod(
        "default", {"metadata": {"generateName": "worker-"}, "spec": pod("x")["spec"]}
    )
    assert generated.metadata.name.startswith("worker-")
    assert len(generated.metadata.name) == len("worker-") + 5

    def names(selector: str) -> list[str]:
        pods = core.list_namespaced_pod("default", label_selector=selector).items
        return sorted(p.metadata.name for p in pods)

    assert names("app=web") == ["a", "b"]
    assert names("app=web,tier") == ["a"]
    assert names("app=web,!tier") == ["b"]
    assert names("app in (db, web),tier!=front") == ["b", "c"]
    assert names("app notin (web)") == ["c", generated.metadata.name]


def test_status_subresource_and_generation(cluster: EmulatedCluster) -> None:
    created = cluster.create(VIDEOTRANSCODES, {**transcode("v1"), "status": {"phase": "Bogus"}})
    assert "status" not in created  # not settable on create
    status = cluster.patch_status(
        VIDEOTRANSCODES, "default", "v1", {"phase": "Probing", "progress": 5}
    )
    assert status["status"] == {"phase": "Probing", "progress": 5}
    assert status["metadata"]["generation"] == 1
    labelled = cluster.patch(
        VIDEOTRANSCODES, "default", "v1", {"metadata": {"labels": {"a": "b"}}, "status": None}
    )
    assert labelled["status"]["phase"] == "Probing"  # the main resource ignores status
    assert labelled["metadata"]["generation"] == 1  # metadata is not the spec
    changed = cluster.patch(VIDEOTRANSCODES, "default", "v1", {"spec": {"priority": 3}})
    assert changed["metadata"]["generation"] == 2
    same = cluster.patch(VIDEOTRANSCODES, "default", "v1", {"spec": {"priority": 3}})
    assert same["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]
    spec_via_status = cluster.patch(
        VIDEOTRANSCODES, "default", "v1", {"spec": {"priority": 9}}, subresource="status"
    )
    assert spec_via_status["spec"]["priority"] == 3  # the status subresource ignores the rest


def test_failed_json_patch_test_gives_422_and_stale_version_409(
    custom: Any, cluster: EmulatedCluster
) -> None:
    obj = cluster.create(VIDEOTRANSCODES, transcode("v1"))
    rv = obj["metadata"]["resourceVersion"]

    def json_patch(expected_version: str) -> Any:  # what Kopf sends to add its finalizer
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": expected_version},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
        ]
        return custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "v1", ops,
            _content_type="application/json-patch+json",
        )  # fmt: skip

    with pytest.raises(ApiException) as unprocessable:
        json_patch("0")
    assert unprocessable.value.status == 422
    assert "finalizers" not in cluster.get(VIDEOTRANSCODES, "default", "v1")["metadata"]
    patched = json_patch(rv)
    assert patched["metadata"]["finalizers"] == ["x"]
    with pytest.raises(ApiException) as conflict:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, "v1", {"metadata": {"resourceVersion": rv}}
        )
    assert conflict.value.status == 409


def test_watch_resumes_from_a_resource_version_without_replay(
    core: Any, cluster: EmulatedCluster
) -> None:
    cluster.create(PODS, pod("old", app="web"))
    since = core.list_namespaced_pod("default").metadata.resource_version
    cluster.create(PODS, pod("new", app="web"))
    cluster.patch(PODS, "default", "old", {"metadata": {"labels": {"app": "db"}}})
    cluster.delete(PODS, "default", "new")
    watch: Any = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
    stream = watch.stream(
        core.list_namespaced_pod,
        "default",
        label_selector="app=web",
        resource_version=since,
        timeout_seconds=1,
    )
    events = [(event["type"], event["object"].metadata.name) for event in stream]
    # "old" leaving the selector is a DELETED for this watcher, as with a real API server.
    assert events == [("ADDED", "new"), ("DELETED", "old"), ("DELETED", "new")]
    stream = watch.stream(core.list_namespaced_pod, "default", timeout_seconds=1)
    everything = [event["type"] for event in stream]
    assert everything == ["ADDED"]  # no resourceVersion: the current objects, then changes


def test_finalizers_hold_deletion_until_removed(custom: Any, cluster: EmulatedCluster) -> None:
    body = transcode("v1")
    body["metadata"]["finalizers"] = ["hlsforge.dev/outputs"]
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "v1")
    marked = cluster.get(VIDEOTRANSCODES, "default", "v1")
    assert marked["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as forbidden:
        cluster.patch(VIDEOTRANSCODES, "default", "v1", {"metadata": {"finalizers": ["a", "b"]}})
    assert forbidden.value.code == 422
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "v1", {"metadata": {"finalizers": None}}
    )
    assert cluster.find(VIDEOTRANSCODES, "default", "v1") is None


def test_garbage_collection_cascades_through_owner_references(cluster: EmulatedCluster) -> None:
    owner = cluster.create(VIDEOTRANSCODES, transcode("v1"))
    job = cluster.create(JOBS, child({"metadata": {"name": "v1-probe"}, "spec": {}}, owner))
    cluster.create(PODS, child(pod("v1-probe-x"), job))
    cluster.create(PODS, child(pod("held"), job, finalizers=["keep"]))
    cluster.delete(VIDEOTRANSCODES, "default", "v1")
    assert cluster.find(JOBS, "default", "v1-probe") is None
    assert cluster.find(PODS, "default", "v1-probe-x") is None
    assert cluster.get(PODS, "default", "held")["metadata"]["deletionTimestamp"]


def test_deleting_a_job_orphans_its_pods_unless_told_otherwise(cluster: EmulatedCluster) -> None:
    for name in ("a", "b"):
        job = cluster.create(JOBS, {"metadata": {"name": name}, "spec": {}})
        cluster.create(PODS, child(pod(f"{name}-pod"), job))
    cluster.delete(JOBS, "default", "a")  # batch/v1's legacy default, as kubectl warns
    assert "ownerReferences" not in cluster.get(PODS, "default", "a-pod")["metadata"]
    cluster.delete(JOBS, "default", "b", propagation="Background")
    assert cluster.find(PODS, "default", "b-pod") is None


def test_events_of_both_apis_are_accepted(api: kubernetes.client.ApiClient, core: Any) -> None:
    event = {"metadata": {"generateName": "kopf-event-"}, "reason": "Logging",
             "message": "hello", "involvedObject": {"kind": KIND, "name": "v1"}}  # fmt: skip
    first = core.create_namespaced_event("default", event)
    second = core.create_namespaced_event("default", event)
    assert first.metadata.name != second.metadata.name
    events: Any = kubernetes.client.EventsV1Api(api)
    modern = {"metadata": {"generateName": "e-"}, "eventTime": "2025-01-01T00:00:00.000000Z",
              "reportingController": "hlsforge", "reportingInstance": "x", "action": "Probe",
              "reason": "Started", "type": "Normal"}  # fmt: skip
    assert events.create_namespaced_event("default", modern).metadata.name.startswith("e-")


def test_pod_log_is_followed_until_the_container_ends(core: Any, cluster: EmulatedCluster) -> None:
    cluster.create(PODS, pod("p"))
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log("p", "default")
    assert waiting.value.status == 400  # ContainerCreating
    log = cluster.call(lambda: cluster.store.open_log("default", "p"))
    cluster.call(lambda: log.write(b"first\n"))
    response = core.read_namespaced_pod_log("p", "default", follow=True, _preload_content=False)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(response.stream(amt=1024)))
    reader.start()
    cluster.call(lambda: log.write(b"second\n"))
    cluster.call(log.close)
    reader.join(timeout=10)
    response.release_conn()
    assert b"".join(lines) == b"first\nsecond\n"
    assert core.read_namespaced_pod_log("p", "default", tail_lines=1) == "second\n"


def test_a_crd_serves_its_resource(cluster: EmulatedCluster) -> None:
    crd = {
        "metadata": {"name": "widgets.example.dev"},
        "spec": {
            "group": "example.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "subresources": {"status": {}}}],
        },
    }
    cluster.create("apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    widget = cluster.create("example.dev/v1/widgets", {"metadata": {"name": "w"}})
    assert widget["kind"] == "Widget"


def test_kubectl_applies_and_gets(kubeconfig: Path, tmp_path: Path) -> None:
    # `make setup` puts kubectl next to the venv's python when the system has none
    found = shutil.which("kubectl") or shutil.which(
        "kubectl", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail("kubectl is not installed: run `make setup` (scripts/install-kube-tools.sh)")
    kubectl_binary: str = found

    def kubectl(*args: str) -> str:
        command = [kubectl_binary, "--kubeconfig", str(kubeconfig), *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    manifest = tmp_path / "v1.json"
    manifest.write_text(json.dumps(transcode("v1", app="demo")))
    assert "created" in kubectl("apply", "--validate=false", "-f", str(manifest))
    manifest.write_text(json.dumps({**transcode("v1", app="demo"), "spec": {"priority": 7}}))
    assert "configured" in kubectl("apply", "--validate=false", "-f", str(manifest))
    got = json.loads(kubectl("get", "videotranscodes", "-l", "app=demo", "-o", "json"))
    assert [item["spec"] for item in got["items"]] == [{"priority": 7}]
    assert kubectl("get", "ns", "default", "-o", "name").strip() == "namespace/default"
    name = kubectl("get", "videotranscodes", "v1", "-o", "name").strip()
    assert name == f"videotranscode.{GROUP}/v1"
    assert "deleted" in kubectl("delete", "-f", str(manifest))
    assert kubectl("get", "videotranscodes", "-o", "name") == ""


OPERATOR = """
import kopf


@kopf.on.login()
def login(**kwargs):
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.create("hlsforge.dev", "v1alpha1", "videotranscodes")
def created(spec, **_):
    return {"message": "hello " + spec["who"]}


@kopf.on.delete("hlsforge.dev", "v1alpha1", "videotranscodes")
def deleted(**_):
    pass
"""


def test_kopf_handles_create_and_delete_with_its_finalizer(
    cluster: EmulatedCluster,
    kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = f"smoke_operator_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(OPERATOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    previous = kopf.get_default_registry()
    args = ["run", "--standalone", "-A", "--verbose", "-m", module]
    try:
        with KopfRunner(args, registry=kopf.OperatorRegistry(), timeout=30) as runner:
            cluster.create(VIDEOTRANSCODES, {**transcode("v1"), "spec": {"who": "kmock"}})
            handled = cluster.wait_for(
                VIDEOTRANSCODES, "default", "v1",
                lambda obj: bool(obj and (obj.get("status") or {}).get("created")),
                timeout=20,
            )  # fmt: skip
            assert handled is not None
            assert handled["status"]["created"] == {"message": "hello kmock"}
            assert handled["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
            cluster.delete(VIDEOTRANSCODES, "default", "v1")
            cluster.wait_for(VIDEOTRANSCODES, "default", "v1", lambda obj: obj is None, timeout=20)
    finally:
        kopf.set_default_registry(previous)
    assert runner.exception is None
    assert runner.exit_code == 0
    assert "Handler 'created' succeeded." in runner.output
    assert "Handler 'deleted' succeeded." in runner.output
