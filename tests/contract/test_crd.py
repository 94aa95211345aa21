"""The API server and the models agree on VideoTranscode resources.

The CRD is generated from the models (`videotranscode.crd`, `make crd`; test_crd_generated.py
checks the committed files), so its shape mirrors them by construction. These tests show that
they also behave alike: fixtures, the example and the operator's status are accepted or
rejected by both, and each CEL rule agrees with its Python equivalent.

`jsonschema` stands in for the apiserver's OpenAPI validation. What it does not know is
translated here, the way the apiserver behaves with `kubectl apply` (strict field validation):

- nulls are pruned (no field is `nullable`), then `default`s are filled in, then validated;
- an undeclared field is an error (`additionalProperties: false` on every declared object);
- `x-kubernetes-int-or-string`: an integer or a string (`pattern` applies to strings only);
- `x-kubernetes-list-type: map`: entries are unique by their `x-kubernetes-list-map-keys`;
- `x-kubernetes-validations` (CEL): each rule has a Python equivalent keyed by its message, and
  the real expression is evaluated too (the `cel` package) and must agree with it. Transition
  rules (those using `oldSelf`) are skipped on create and checked on update by the emulator's
  implementation (`hlsforge_dev.validation`, which `make dev` serves too).
"""

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cel
import pytest
import yaml
from hlsforge_dev.validation import transition_failures, uses_old_self, with_defaults
from jsonschema import Draft202012Validator, validators
from jsonschema import ValidationError as SchemaError
from jsonschema.protocols import Validator
from pydantic import ValidationError

from videotranscode import (
    GROUP,
    KIND,
    MUTABLE_SPEC_FIELDS,
    PLURAL,
    SPEC_IMMUTABLE,
    VERSION,
    AudioStreamInfo,
    Condition,
    Phase,
    Playback,
    RenditionPhase,
    RenditionStatus,
    SourceInfo,
    VideoStreamInfo,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
    parse_bitrate,
)
from videotranscode.renditions import BITRATE_PATTERN

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / f"{PLURAL}.{GROUP}.yaml"
FIXTURES = ROOT / "tests" / "fixtures" / "videotranscodes"
EXAMPLE = ROOT / "examples" / "videotranscode.yaml"

Json = Any  # a decoded YAML/JSON value
Schema = dict[str, Any]


class _StrictLoader(yaml.SafeLoader):
    """Rejects a repeated key, as kubectl does (PyYAML would keep the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = {key for key in keys if keys.count(key) > 1}
        assert not repeated, f"repeated keys {repeated} {node.start_mark}"
        return super().construct_mapping(node, deep=deep)


def load(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    assert isinstance(document, dict), path
    return document


CRD = load(CRD_FILE)
SCHEMA: Schema = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC_SCHEMA: Schema = SCHEMA["properties"]["spec"]
STATUS_SCHEMA: Schema = SCHEMA["properties"]["status"]


# --- CEL rules and their Python equivalents, by message -----------------------------------------


def _is_int(value: Json) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


CEL_RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "source needs either bucket and key, or url": lambda source: (
        ("url" in source) != ("bucket" in source or "key" in source)
    ),
    "source needs both bucket and key": lambda source: ("bucket" in source) == ("key" in source),
    "segmentSeconds must be a multiple of gopSeconds": lambda spec: (
        _is_int(spec.get("segmentSeconds"))
        and _is_int(spec.get("gopSeconds"))
        and spec["gopSeconds"] != 0
        and spec["segmentSeconds"] % spec["gopSeconds"] == 0
    ),
    "rendition names audio-0 to audio-99 are the audio renditions'": lambda rung: (
        re.fullmatch(r"audio-[0-9]{1,2}", str(rung.get("name"))) is None
    ),
    "slicing in seconds must be a multiple of segmentSeconds, at most 3600": lambda spec: (
        not _is_int(spec.get("slicing"))
        or (
            spec["segmentSeconds"] <= spec["slicing"] <= 3600
            and spec["slicing"] % spec["segmentSeconds"] == 0
        )
    ),
}


def _without_mutable(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec minus MUTABLE_SPEC_FIELDS, rungs keyed by name (their order does not count)."""
    kept = copy.deepcopy(spec)
    for dotted in MUTABLE_SPEC_FIELDS:
        *parents, leaf = dotted.split(".")
        node = kept
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)
    if "renditions" in kept:
        kept["renditions"] = {rung.get("name"): rung for rung in kept["renditions"]}
    return kept


# (self, oldSelf) -> whether the update is allowed
TRANSITION_RULES: dict[str, Callable[[dict[str, Any], dict[str, Any]], bool]] = {
    SPEC_IMMUTABLE: lambda spec, old: _without_mutable(spec) == _without_mutable(old),
}


def _evaluate_cel(rule: str, value: dict[str, Any]) -> bool:
    """The real expression; a runtime error (no such key, bad types) fails it, as in Kubernetes."""
    try:
        return cel.evaluate(rule, {"self": value}) is True
    except Exception:  # KeyError, TypeError, ZeroDivisionError...: the rule fails
        return False


# --- the apiserver stand-in ---------------------------------------------------------------------


def _int_or_string(
    _validator: Validator, enabled: bool, instance: Json, _schema: Schema
) -> Iterator[SchemaError]:
    if enabled and (isinstance(instance, bool) or not isinstance(instance, int | str)):
        yield SchemaError(f"{instance!r} is neither an integer nor a string")


def _list_type(
    _validator: Validator, list_type: str, instance: Json, schema: Schema
) -> Iterator[SchemaError]:
    if list_type == "atomic" or not isinstance(instance, list):
        return
    if list_type == "map":
        keys = schema["x-kubernetes-list-map-keys"]
        entries = [
            json.dumps([item.get(key) for key in keys])
            for item in instance
            if isinstance(item, dict)
        ]
    else:
        entries = [json.dumps(item, sort_keys=True) for item in instance]
    duplicates = sorted({entry for entry in entries if entries.count(entry) > 1})
    if duplicates:
        yield SchemaError(f"duplicate entries in a list-type {list_type}: {duplicates}")


def _cel_validations(
    _validator: Validator, rules: list[dict[str, str]], instance: Json, _schema: Schema
) -> Iterator[SchemaError]:
    if not isinstance(instance, dict):
        return
    for rule in rules:
        if uses_old_self(rule["rule"]):  # on create there is no oldSelf: not evaluated
            continue
        passed = CEL_RULES[rule["message"]](instance)
        assert passed == _evaluate_cel(rule["rule"], instance), (rule, instance)
        if not passed:
            yield SchemaError(rule["message"])


KubeValidator = validators.extend(  # type: ignore[no-untyped-call]  # untyped in the stubs
    Draft202012Validator,
    {
        "x-kubernetes-int-or-string": _int_or_string,
        "x-kubernetes-list-type": _list_type,
        "x-kubernetes-validations": _cel_validations,
    },
)


def _strict(schema: Schema) -> Schema:
    """Every declared object rejects undeclared fields (kubectl's strict field validation)."""
    strict = {key: copy.deepcopy(value) for key, value in schema.items() if key != "properties"}
    if "properties" in schema:
        strict["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        strict["additionalProperties"] = False
    if "items" in schema:
        strict["items"] = _strict(schema["items"])
    return strict


def _drop_nulls(value: Json) -> Json:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(item) for item in value]
    return value


def admit(schema: Schema, value: Json) -> Json:
    """What the apiserver stores: nulls pruned, defaults filled in."""
    return with_defaults(schema, _drop_nulls(value))


def _error_paths(error: SchemaError) -> list[str]:
    """Where the apiserver would report it: a missing or unknown field at the field's own path."""
    path = [str(part) for part in error.absolute_path]
    if error.validator not in ("required", "additionalProperties"):
        return [".".join(path) or "<root>"]
    assert isinstance(error.instance, dict)
    assert isinstance(error.schema, dict)
    declared = error.schema["required" if error.validator == "required" else "properties"]
    if error.validator == "required":
        names = [name for name in declared if name not in error.instance]
    else:
        names = [name for name in error.instance if name not in declared]
    return [".".join([*path, name]) for name in names]


def crd_errors(schema: Schema, value: Json) -> list[str]:
    """The apiserver's verdict on `value` as `path: message` lines; empty when it is accepted."""
    validator = KubeValidator(_strict(schema))
    errors = [
        f"{path}: {error.message}"
        for error in validator.iter_errors(admit(schema, value))
        for path in _error_paths(error)
    ]
    return list(dict.fromkeys(errors))


def _python_transition_failures(
    schema: Schema, new: Json, old: Json, path: str = ""
) -> Iterator[tuple[str, str]]:
    """What the Python equivalents say of the transition rules, where the emulator looks."""
    if not (isinstance(new, dict) and isinstance(old, dict)):
        return
    for validation in schema.get("x-kubernetes-validations", []):
        rule, message = validation["rule"], validation["message"]
        if uses_old_self(rule) and not TRANSITION_RULES[message](new, old):
            yield path or "<root>", message
    for name, node in schema.get("properties", {}).items():
        if name in new and name in old:
            yield from _python_transition_failures(
                node, new[name], old[name], f"{path}.{name}".lstrip(".")
            )


def crd_update_errors(schema: Schema, old: Json, new: Json) -> list[str]:
    """The apiserver's verdict on updating the stored `old` to `new`: the rules of a create,
    then the transition rules."""
    errors = crd_errors(schema, new)
    stored_new, stored_old = admit(schema, new), admit(schema, old)
    failures = transition_failures(schema, stored_new, stored_old)
    python = list(_python_transition_failures(schema, stored_new, stored_old))
    assert python == failures, (python, failures, new, old)
    transitions = [f"{path}: {message}" for path, message in failures]
    return errors + [error for error in transitions if error not in errors]


# --- the schema's nodes -------------------------------------------------------------------------


def all_nodes(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path or "<root>", schema
    for name, node in schema.get("properties", {}).items():
        yield from all_nodes(node, f"{path}.{name}")
    if "items" in schema:
        yield from all_nodes(schema["items"], f"{path}[]")


def resolve(schema: Schema, json_path: str) -> Schema:
    node = schema
    for name in json_path.removeprefix(".").split("."):
        node = node.get("items", node)["properties"][name]
    return node


# --- fixtures -----------------------------------------------------------------------------------


def fixture_files(kind: str) -> list[Path]:
    return sorted((FIXTURES / kind).glob("*.yaml"))


def assert_accepted_both_ways(resource: dict[str, Any]) -> None:
    assert resource["apiVersion"] == f"{GROUP}/{VERSION}"
    assert resource["kind"] == KIND
    assert crd_errors(SCHEMA, resource) == []
    as_written = VideoTranscodeSpec.model_validate(resource["spec"])
    as_stored = VideoTranscodeSpec.model_validate(admit(SCHEMA, resource)["spec"])
    assert as_stored == as_written, "the CRD's defaults differ from the model's"


def test_there_are_enough_fixtures() -> None:
    assert len(fixture_files("valid")) >= 6
    assert len(fixture_files("invalid")) >= 12


@pytest.mark.parametrize("path", fixture_files("valid"), ids=lambda path: path.stem)
def test_valid_fixture_is_accepted_by_the_crd_and_the_model(path: Path) -> None:
    resource = load(path)
    assert resource["metadata"]["name"] == path.stem
    assert_accepted_both_ways(resource)


@pytest.mark.parametrize("path", fixture_files("invalid"), ids=lambda path: path.stem)
def test_invalid_fixture_is_rejected_by_the_crd_and_the_model(path: Path) -> None:
    assert re.match(r"# invalid: \S", path.read_text()), "say why on the first line"
    resource = load(path)
    assert resource["metadata"]["name"] == path.stem
    assert resource["apiVersion"] == f"{GROUP}/{VERSION}"
    assert resource["kind"] == KIND
    rejected_by_crd = crd_errors(SCHEMA, resource)
    assert rejected_by_crd != [], "the CRD accepts it"
    with pytest.raises(ValidationError) as rejected_by_model:
        VideoTranscodeSpec.model_validate(resource["spec"])
    for error in rejected_by_model.value.errors():
        where = ".".join(["spec", *map(str, error["loc"])])
        assert any(crd.startswith(where) for crd in rejected_by_crd), (error, rejected_by_crd)


def test_the_example_is_accepted_by_the_crd_and_the_model() -> None:
    assert_accepted_both_ways(load(EXAMPLE))


def test_defaults_show_up_as_stored() -> None:
    stored = admit(SCHEMA, load(FIXTURES / "valid" / "minimal.yaml"))["spec"]
    defaults = {
        "segmentSeconds": 6,
        "gopSeconds": 2,
        "segmentType": "fmp4",
        "priority": 0,
        "thumbnail": {"enabled": True, "atPercent": 10, "longSide": 640},
    }
    assert {name: stored[name] for name in defaults} == defaults
    assert stored["output"]["cleanupOnDelete"] is False
    assert "renditions" not in stored  # omitted means the default ladder, chosen by the operator


# --- bitrates and CEL rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("3000k", True),
        ("6M", True),
        ("1.5m", True),
        ("365000", True),
        ("16.8M", True),
        ("", False),
        ("fast", False),
        ("3000kb", False),
        ("-1k", False),
        ("3 000k", False),
        ("1.k", False),
        (".5M", False),
    ],
)
def test_bitrate_pattern_matches_parse_bitrate(text: str, accepted: bool) -> None:
    assert bool(re.search(BITRATE_PATTERN, text)) is accepted
    try:
        parse_bitrate(text)
    except ValueError:
        assert not accepted
    else:
        assert accepted


@pytest.mark.parametrize(
    ("rendition", "crd_accepts", "model_accepts"),
    [
        # The apiserver cannot range-check a string bitrate; the operator's model does.
        ({"name": "a", "height": 360, "videoBitrate": "10k"}, True, False),
        # The model trims whitespace around a bitrate; the CRD's pattern does not.
        ({"name": "a", "height": 360, "videoBitrate": " 3000k"}, False, True),
    ],
)
def test_known_differences_between_the_crd_and_the_model(
    rendition: dict[str, Any], crd_accepts: bool, model_accepts: bool
) -> None:
    spec = load(FIXTURES / "valid" / "minimal.yaml")["spec"] | {"renditions": [rendition]}
    assert (crd_errors(SPEC_SCHEMA, spec) == []) is crd_accepts
    try:
        VideoTranscodeSpec.model_validate(spec)
    except ValidationError:
        assert not model_accepts
    else:
        assert model_accepts


def test_a_float_bitrate_is_rejected_by_the_crd_and_the_model() -> None:
    spec = load(FIXTURES / "valid" / "minimal.yaml")["spec"]
    spec["renditions"] = [{"name": "a", "height": 360, "videoBitrate": 3000000.5}]
    assert crd_errors(SPEC_SCHEMA, spec) != []
    with pytest.raises(ValidationError):
        VideoTranscodeSpec.model_validate(spec)


def test_every_cel_rule_has_a_python_equivalent() -> None:
    declared = [
        (uses_old_self(validation["rule"]), validation["message"])
        for _, node in all_nodes(SCHEMA)
        for validation in node.get("x-kubernetes-validations", [])
    ]
    known = [(False, message) for message in CEL_RULES]
    known += [(True, message) for message in TRANSITION_RULES]
    assert sorted(declared) == sorted(known)


def test_transition_rules_sit_on_objects_outside_lists() -> None:
    """Where the emulator's `transition_failures` looks for them (inside a list, Kubernetes
    would correlate items by their map keys: teach it that before adding one there)."""
    for path, node in all_nodes(SCHEMA):
        if any(uses_old_self(v["rule"]) for v in node.get("x-kubernetes-validations", [])):
            assert "[]" not in path
            assert node["type"] == "object"


# --- updates: the spec is immutable but for a few fields ----------------------------------------


def _full_resource() -> dict[str, Any]:
    resource = load(FIXTURES / "valid" / "priority-and-owner.yaml")
    resource["spec"]["renditions"] = [
        {"name": "360p", "height": 360, "videoBitrate": "365k"},
        {"name": "720p", "height": 720, "videoBitrate": "3000k"},
    ]
    return resource


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = spec
        for parent in parents:
            node = node.setdefault(parent, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value

    return change


def _reorder_rungs(spec: dict[str, Any]) -> None:
    spec["renditions"].reverse()


def _retune_rung(spec: dict[str, Any]) -> None:
    spec["renditions"][1]["videoBitrate"] = "2500k"


def _add_rung(spec: dict[str, Any]) -> None:
    spec["renditions"].append({"name": "1080p", "height": 1080, "videoBitrate": "6M"})


SPEC_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], bool]] = {
    "nothing": (lambda spec: None, True),
    "priority": (_set("priority", -5), True),
    "cleanupOnDelete": (_set("output.cleanupOnDelete", True), True),
    "rungs-reordered": (_reorder_rungs, True),
    "rung-retuned": (_retune_rung, False),
    "rung-added": (_add_rung, False),
    "renditions-removed": (_set("renditions", None), False),
    "source-key": (_set("source.key", "uploads/other.mp4"), False),
    "source-to-url": (lambda spec: spec.update(source={"url": "https://example.com/a.mp4"}), False),
    "output-prefix": (_set("output.prefix", "videos/elsewhere"), False),
    "output-bucket": (_set("output.bucket", "other-media"), False),
    "segmentSeconds": (_set("segmentSeconds", 4), False),
    "segmentType": (_set("segmentType", "mpegts"), False),
    "thumbnail": (_set("thumbnail.atPercent", 50), False),
    "videoId-changed": (_set("videoId", "another-video"), False),
    "videoId-removed": (_set("videoId", None), False),
    "owner-removed": (_set("owner", None), False),
}


@pytest.mark.parametrize(("edit", "accepted"), SPEC_EDITS.values(), ids=SPEC_EDITS.keys())
def test_a_spec_edit_is_accepted_only_for_mutable_fields(
    edit: Callable[[dict[str, Any]], None], accepted: bool
) -> None:
    old = _full_resource()
    assert crd_errors(SCHEMA, old) == []
    new = copy.deepcopy(old)
    edit(new["spec"])
    errors = crd_update_errors(SCHEMA, old, new)
    assert errors == ([] if accepted else [f"spec: {SPEC_IMMUTABLE}"])
    # Where CEL is absent, the operator tells the same edits apart by the spec's fingerprint.
    fingerprints = {VideoTranscodeSpec.model_validate(r["spec"]).fingerprint() for r in (old, new)}
    assert (len(fingerprints) == 1) is accepted


def test_a_spec_edit_from_the_default_ladder_to_an_explicit_one_is_refused() -> None:
    old = load(FIXTURES / "valid" / "minimal.yaml")
    new = copy.deepcopy(old)
    new["spec"]["renditions"] = [{"name": "360p", "height": 360, "videoBitrate": "365k"}]
    assert crd_update_errors(SCHEMA, old, new) == [f"spec: {SPEC_IMMUTABLE}"]


def test_spelling_out_a_default_keeps_the_fingerprint() -> None:
    """Defaults count as absent, so a newer model with more defaulted fields (or a client that
    writes the defaults out) gives a running resource the same fingerprint."""
    minimal = load(FIXTURES / "valid" / "minimal.yaml")["spec"]
    stored = admit(SPEC_SCHEMA, minimal)
    assert stored != minimal
    assert (
        VideoTranscodeSpec.model_validate(stored).fingerprint()
        == VideoTranscodeSpec.model_validate(minimal).fingerprint()
    )


# --- status -------------------------------------------------------------------------------------


def full_status(*, audio: AudioStreamInfo | None) -> VideoTranscodeStatus:
    return VideoTranscodeStatus(
        phase=Phase.TRANSCODING,
        progress=42.5,
        source=SourceInfo(
            duration_seconds=61.28,
            container="mov,mp4,m4a,3gp,3g2,mj2",
            size_bytes=73_400_320,
            video=VideoStreamInfo(
                codec="h264",
                width=1920,
                height=1080,
                fps=29.97,
                frame_rate="30000/1001",
                pixel_format="yuv420p",
                rotation=0,
            ),
            audio=audio,
        ),
        renditions=[
            RenditionStatus(
                name="720p",
                phase=RenditionPhase.SUCCEEDED,
                progress=100,
                job_name="example-720p",
                attempts=1,
                bandwidth=3_420_114,
                average_bandwidth=3_101_717,
                resolution="1280x720",
                codecs="avc1.64001f,mp4a.40.2",
                playlist="videos/6650f0c2/720p/index.m3u8",
            ),
            RenditionStatus(
                name="1080p",
                phase=RenditionPhase.FAILED,
                progress=12.5,
                job_name="example-1080p",
                attempts=3,
                message="ffmpeg exited 1",
            ),
            RenditionStatus(name="360p"),
        ],
        renditions_summary="1/3",
        playback=Playback(
            master_playlist="videos/6650f0c2/master.m3u8",
            url="https://cdn.example.com/videos/6650f0c2/master.m3u8",
            thumbnail="videos/6650f0c2/poster.jpg",
        ),
        conditions=[
            Condition(
                type="Ready",
                status="False",
                reason="Transcoding",
                message="1 of 3 renditions ready",
                last_transition_time="2024-05-01T12:00:00Z",
            ),
            Condition(type="Retrying", status="Unknown"),
        ],
        started_at="2024-05-01T11:59:00Z",
        observed_generation=1,
        message="encoding 3 renditions",
    )


def test_a_status_written_by_the_models_is_kept_whole() -> None:
    status = full_status(audio=AudioStreamInfo(codec="aac", channels=2, sample_rate=48_000))
    wire = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert crd_errors(STATUS_SCHEMA, wire) == []
    assert admit(STATUS_SCHEMA, wire) == wire  # nothing pruned, no default changes anything
    assert VideoTranscodeStatus.model_validate(admit(STATUS_SCHEMA, wire)) == status


def test_a_status_of_a_silent_video_reads_back() -> None:
    status = full_status(audio=None)
    wire = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert crd_errors(STATUS_SCHEMA, wire) == []
    assert VideoTranscodeStatus.model_validate(admit(STATUS_SCHEMA, wire)) == status


def test_an_empty_status_defaults_like_the_model() -> None:
    stored = admit(STATUS_SCHEMA, {})
    assert VideoTranscodeStatus.model_validate(stored) == VideoTranscodeStatus()


# --- the CRD itself -----------------------------------------------------------------------------


def test_schema_is_structural_and_strict() -> None:
    for path, node in all_nodes(SCHEMA):
        assert "description" in node or path == ".metadata", path
        assert not node.get("x-kubernetes-preserve-unknown-fields"), path
        assert "additionalProperties" not in node, path
        assert not {"anyOf", "oneOf", "allOf", "not", "nullable"} & node.keys(), path
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
            continue
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}
        if node["type"] == "array":
            assert "items" in node, path
        if node["type"] == "object":
            assert "properties" in node or path == ".metadata", path
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"]["required"])
        if "default" in node:
            assert crd_errors(node, node["default"]) == [], path


@pytest.mark.parametrize(
    "column", CRD["spec"]["versions"][0]["additionalPrinterColumns"], ids=lambda c: c["name"]
)
def test_printer_column_points_at_a_declared_field(column: dict[str, Any]) -> None:
    json_path: str = column["jsonPath"]
    if json_path.startswith(".metadata."):
        assert json_path == ".metadata.creationTimestamp"
        assert column["type"] == "date"
        return
    node = resolve(SCHEMA, json_path)
    compatible = {"number": {"number", "integer"}, "integer": {"integer"}, "string": {"string"}}
    assert column["type"] in compatible[node["type"]], json_path


def test_printer_columns_are_phase_progress_renditions_age() -> None:
    columns = CRD["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns if not c.get("priority")] == [
        "Phase",
        "Progress",
        "Renditions",
        "Age",
    ]
