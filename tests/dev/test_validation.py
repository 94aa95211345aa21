"""CRD transition rules in the emulated API server, as Kubernetes documents them: checked
on updates only, where the old object has a value; defaults filled in; map lists in any
order; a false or failing rule is 422 Invalid with the rule's message."""

from pathlib import Path
from typing import Any

import pytest
from hlsforge_dev import VIDEOTRANSCODES, ApiError, EmulatedCluster
from hlsforge_dev.validation import transition_failures
from kubernetes.client import ApiException

from videotranscode import GROUP, KIND, PLURAL, SPEC_IMMUTABLE, VERSION

CRD_FILE = Path(__file__).resolve().parents[2] / "crds" / f"{PLURAL}.{GROUP}.yaml"
IMMUTABLE = {"rule": "self == oldSelf", "message": "frozen"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.size == oldSelf.size", "message": "size is immutable"},
                {"rule": "self.size > 0", "message": "not a transition rule: not checked here"},
            ],
            "properties": {
                "size": {"type": "integer", "default": 1},
                "note": {"type": "string"},
                "limits": {"type": "object", "x-kubernetes-validations": [IMMUTABLE],
                           "properties": {"cpu": {"type": "string"}}},
                "items": {
                    "type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
        },
    },
}  # fmt: skip


def test_a_transition_rule_compares_the_new_object_with_the_old() -> None:
    old = {"spec": {"size": 2, "note": "a"}}
    assert transition_failures(SCHEMA, {"spec": {"size": 2, "note": "b"}}, old) == []
    assert transition_failures(SCHEMA, {"spec": {"size": 3}}, old) == [
        ("spec", "size is immutable")
    ]


def test_defaults_count_as_stored() -> None:
    assert transition_failures(SCHEMA, {"spec": {"size": 1}}, {"spec": {}}) == []
    assert transition_failures(SCHEMA, {"spec": {}}, {"spec": {"size": 5}}) != []


def test_a_rule_runs_only_where_the_old_object_has_a_value() -> None:
    assert transition_failures(SCHEMA, {"spec": {"limits": {"cpu": "1"}}}, {"spec": {}}) == []
    assert transition_failures(
        SCHEMA, {"spec": {"limits": {"cpu": "1"}}}, {"spec": {"limits": {"cpu": "2"}}}
    ) == [("spec.limits", "frozen")]


def test_a_map_list_compares_in_any_order() -> None:
    schema = {**SCHEMA, "properties": {"spec": {**SCHEMA["properties"]["spec"],
              "x-kubernetes-validations": [{"rule": "self.items == oldSelf.items",
                                            "message": "items are immutable"}]}}}  # fmt: skip
    old = {"spec": {"items": [{"name": "a"}, {"name": "b"}]}}
    assert (
        transition_failures(schema, {"spec": {"items": [{"name": "b"}, {"name": "a"}]}}, old) == []
    )
    assert transition_failures(schema, {"spec": {"items": [{"name": "a"}]}}, old) != []


def test_a_rule_that_cannot_be_evaluated_fails() -> None:
    schema = {"type": "object", "x-kubernetes-validations": [
        {"rule": "self.missing == oldSelf.missing", "message": "broken"}]}  # fmt: skip
    assert transition_failures(schema, {}, {}) == [("<root>", "broken")]


def transcode(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": "cat"},
        "spec": {
            "source": {"bucket": "uploads", "key": "cat.mp4"},
            "output": {"bucket": "media", "prefix": "videos/cat"},
            "renditions": [{"name": "360p", "height": 360, "videoBitrate": "365k"},
                           {"name": "720p", "height": 720, "videoBitrate": "3000k"}],
            **spec,
        },
    }  # fmt: skip


@pytest.fixture
def with_crd(cluster: EmulatedCluster) -> EmulatedCluster:
    """The cluster after `kubectl apply -f crds/`."""
    cluster.apply_crds(CRD_FILE)
    cluster.create(VIDEOTRANSCODES, transcode(), namespace="default")
    return cluster


def test_the_videotranscode_spec_is_immutable_but_for_priority(with_crd: EmulatedCluster) -> None:
    edit = {"spec": {"renditions": [{"name": "360p", "height": 360, "videoBitrate": "400k"}]}}
    with pytest.raises(ApiError) as refused:
        with_crd.patch(VIDEOTRANSCODES, "default", "cat", edit)
    assert refused.value.code == 422
    assert refused.value.message == (
        f'{KIND}.{GROUP} "cat" is invalid: spec: Invalid value: "object": {SPEC_IMMUTABLE}'
    )
    assert with_crd.get(VIDEOTRANSCODES, "default", "cat")["metadata"]["generation"] == 1
    changed = with_crd.patch(VIDEOTRANSCODES, "default", "cat", {"spec": {"priority": 7}})
    assert changed["spec"]["priority"] == 7
    reordered = transcode()["spec"]["renditions"][::-1]
    with_crd.patch(VIDEOTRANSCODES, "default", "cat", {"spec": {"renditions": reordered}})
    with_crd.patch_status(VIDEOTRANSCODES, "default", "cat", {"phase": "Probing"})
    with_crd.patch(VIDEOTRANSCODES, "default", "cat", {"metadata": {"labels": {"a": "b"}}})


def test_a_client_sees_the_rules_message(with_crd: EmulatedCluster, custom: Any) -> None:
    edit = {"spec": {"output": {"prefix": "videos/dog"}}}
    with pytest.raises(ApiException) as refused:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "cat", edit)
    assert refused.value.status == 422
    assert SPEC_IMMUTABLE in str(refused.value.body)


def test_without_the_crd_nothing_is_checked(cluster: EmulatedCluster) -> None:
    """What the emulator serves by default: a cluster that does not enforce the rules (the
    operator's tests of a spec edited in flight rely on it)."""
    cluster.create(VIDEOTRANSCODES, transcode(), namespace="default")
    edited = cluster.patch(VIDEOTRANSCODES, "default", "cat", {"spec": {"segmentType": "mpegts"}})
    assert edited["metadata"]["generation"] == 2
