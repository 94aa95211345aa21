"""The VideoTranscode CustomResourceDefinition, built from the models (`make crd` writes it).

Each field becomes a schema node: its type, its constraints (`Field(ge=..., pattern=...)`),
its default, its docstring as the description, and any `json_schema_extra` keywords of the
field, its type or its model (`x-kubernetes-validations`, `x-kubernetes-int-or-string`, ...).
A field that may be None is optional: the API server prunes nulls, so nothing is `nullable`.
The one rule not declared on a model is the spec's transition rule, derived from
MUTABLE_SPEC_FIELDS: every other spec field keeps its value once created.
"""

import inspect
import types
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, BeforeValidator, ValidationError
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from videotranscode import GROUP, KIND, PLURAL, VERSION
from videotranscode.resource import (
    MUTABLE_SPEC_FIELDS,
    SPEC_IMMUTABLE,
    VideoTranscodeSpec,
    VideoTranscodeStatus,
)

Schema = dict[str, Any]

NAMES = {
    "kind": KIND,
    "listKind": f"{KIND}List",
    "plural": PLURAL,
    "singular": KIND.lower(),
    "shortNames": ["vt"],
    "categories": ["hlsforge"],
}

PRINTER_COLUMNS: list[Schema] = [
    {
        "name": "Phase",
        "type": "string",
        "jsonPath": ".status.phase",
        "description": "Where the transcode is (Pending ... Succeeded | Failed | Cancelled).",
    },
    {
        "name": "Progress",
        "type": "integer",
        "jsonPath": ".status.progress",
        "description": "Percent done over all renditions (shown truncated to a whole number).",
    },
    {
        "name": "Renditions",
        "type": "string",
        "jsonPath": ".status.renditionsSummary",
        "description": "Renditions ready / renditions in the ladder, e.g. 3/4.",
    },
    {
        "name": "Message",
        "type": "string",
        "jsonPath": ".status.message",
        "description": "Why the transcode is in its phase (errors in particular).",
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

RESOURCE_DESCRIPTION = (
    "An uploaded video transcoded to adaptive-bitrate HLS (a ladder of renditions, a master "
    "playlist and a poster frame) by FFmpeg Jobs that the hlsforge operator creates."
)

# The order keywords are written in, so that the YAML reads the same way at every level.
KEYWORD_ORDER = (
    "x-kubernetes-int-or-string",
    "type",
    "format",
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "default",
    "required",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
    "items",
    "properties",
)

JSON_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def build_crd() -> Schema:
    """The CustomResourceDefinition of VideoTranscode, as a dict ready to dump."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": NAMES,
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": build_resource_schema()},
                }
            ],
        },
    }


def build_resource_schema() -> Schema:
    """The openAPIV3Schema: the object around the spec and the status."""
    spec = model_schema(VideoTranscodeSpec)
    spec["x-kubernetes-validations"] = [
        *spec.get("x-kubernetes-validations", []),
        {
            "rule": immutability_rule(VideoTranscodeSpec, MUTABLE_SPEC_FIELDS),
            "message": SPEC_IMMUTABLE,
        },
    ]
    return {
        "type": "object",
        "description": RESOURCE_DESCRIPTION,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": f"The versioned schema of this object, {GROUP}/{VERSION}.",
            },
            "kind": {"type": "string", "description": f"{KIND}."},
            "metadata": {"type": "object"},
            "spec": _ordered(spec),
            "status": model_schema(VideoTranscodeStatus),
        },
    }


def model_schema(model: type[BaseModel], description: str | None = None) -> Schema:
    """An object node: the model's fields as properties, those without a default required."""
    node: Schema = {
        "type": "object",
        "description": _one_line(description or model.__doc__, model.__name__),
        "properties": {
            _wire_name(name, field): field_schema(field, where=f"{model.__name__}.{name}")
            for name, field in model.model_fields.items()
        },
    }
    required = [
        _wire_name(name, field) for name, field in model.model_fields.items() if _required(field)
    ]
    if required:
        node["required"] = required
    node.update(_extra_keywords(model.model_config.get("json_schema_extra")))
    return _ordered(node)


def field_schema(field: FieldInfo, *, where: str) -> Schema:
    """A property node: type, constraints, default, description and extra keywords."""
    annotation, type_extra = _unannotated(_without_none(field.annotation))
    node = type_schema(annotation, field.description)
    node.update(_constraints(field, array=node.get("type") == "array"))
    default = _crd_default(field)
    if default is not PydanticUndefined:
        node["default"] = default
    node.update(type_extra)
    node.update(_extra_keywords(field.json_schema_extra))
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
    if "description" not in node:
        node["description"] = _one_line(field.description, where)
    return _ordered(node)


def type_schema(annotation: Any, description: str | None = None) -> Schema:
    """The node of a type: an object for a model, an array for a list, else a scalar."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_schema(annotation, description)
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return {"type": "array", "items": type_schema(_unannotated(item)[0])}
    if get_origin(annotation) is Literal:
        values = list(get_args(annotation))
        return {"type": _json_type(values), "enum": values}
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = {_json_type(list(get_args(arg))) if get_origin(arg) is Literal
                 else JSON_TYPES[arg] for arg in get_args(annotation)}  # fmt: skip
        if kinds != {"integer", "string"}:
            raise TypeError(f"the CRD generator knows int-or-string unions only, not {annotation}")
        return {"x-kubernetes-int-or-string": True}
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        values = [member.value for member in annotation]
        return {"type": _json_type(values), "enum": values}
    return {"type": JSON_TYPES[annotation]}


def immutability_rule(model: type[BaseModel], mutable: tuple[str, ...]) -> str:
    """A CEL transition rule: every field but the `mutable` ones (dotted wire names) keeps its
    value. A field that may be absent compares by presence first."""
    return "\n&& ".join(_kept_values(model, mutable, path=""))


def _kept_values(model: type[BaseModel], mutable: tuple[str, ...], path: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        wire = f"{path}{_wire_name(name, field)}"
        if wire in mutable:
            continue
        if any(dotted.startswith(f"{wire}.") for dotted in mutable):
            nested, _ = _unannotated(field.annotation)
            if not _always_present(field):
                raise TypeError(f"immutability_rule does not know an optional {wire}")
            yield from _kept_values(nested, mutable, path=f"{wire}.")
        elif _always_present(field):
            yield f"self.{wire} == oldSelf.{wire}"
        else:
            yield f"has(self.{wire}) == has(oldSelf.{wire})"
            yield f"(!has(self.{wire}) || self.{wire} == oldSelf.{wire})"


def _required(field: FieldInfo) -> bool:
    """No default and not None: a null is pruned, so an optional field reads as absent."""
    return field.is_required() and not _is_optional(field.annotation)


def _always_present(field: FieldInfo) -> bool:
    """Whether a stored object has the field: it is required or the CRD defaults it."""
    return _required(field) or _crd_default(field) is not PydanticUndefined


def _crd_default(field: FieldInfo) -> Any:
    """The field's default as the CRD states it; PydanticUndefined when it states none (an
    omitted list reads as empty in the model, an omitted optional field as None)."""
    if field.default_factory is not None:
        if field.default_factory is not list:
            raise TypeError(f"the CRD generator does not know {field.default_factory}")
        return PydanticUndefined
    default = field.default
    if default is None:
        return PydanticUndefined
    if isinstance(default, BaseModel):
        # The API server fills in the nested defaults; {} means the model's own defaults.
        if not _is_all_defaults(default):
            raise ValueError(f"{default!r}: a default object must be the model's own defaults")
        return {}
    if isinstance(default, Enum):
        return default.value
    return default


def _is_all_defaults(value: BaseModel) -> bool:
    try:
        return value == type(value)()
    except ValidationError:  # a field without a default
        return False


def _constraints(field: FieldInfo, *, array: bool) -> Schema:
    length = "Items" if array else "Length"
    keywords: Schema = {}
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            keywords["minimum"] = meta.ge
        elif isinstance(meta, annotated_types.Le):
            keywords["maximum"] = meta.le
        elif isinstance(meta, annotated_types.MinLen):
            keywords[f"min{length}"] = meta.min_length
        elif isinstance(meta, annotated_types.MaxLen):
            keywords[f"max{length}"] = meta.max_length
        elif getattr(meta, "pattern", None) is not None:
            keywords["pattern"] = meta.pattern
        elif not isinstance(meta, BeforeValidator):
            raise TypeError(f"the CRD generator does not know {meta!r}")
    return keywords


def _extra_keywords(extra: JsonDict | Callable[..., None] | None) -> Schema:
    """The CRD keywords a model or a field declares in its `json_schema_extra`."""
    if callable(extra):
        raise TypeError("the CRD generator reads json_schema_extra dicts, not functions")
    return dict(extra or {})


def _unannotated(annotation: Any) -> tuple[Any, Schema]:
    """The type inside `Annotated[...]` and the json_schema_extra of its Field metadata."""
    if get_origin(annotation) is not Annotated:
        return annotation, {}
    extra: Schema = {}
    for meta in annotation.__metadata__:
        if isinstance(meta, FieldInfo) and isinstance(meta.json_schema_extra, dict):
            extra.update(meta.json_schema_extra)
    return annotation.__origin__, extra


def _without_none(annotation: Any) -> Any:
    if _is_optional(annotation):
        (inner,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return inner
    return annotation


def _is_optional(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _json_type(values: list[Any]) -> str:
    (kind,) = {JSON_TYPES[type(value)] for value in values}
    return kind


def _wire_name(name: str, field: FieldInfo) -> str:
    return field.alias or name


def _one_line(text: str | None, what: str) -> str:
    if not text:
        raise ValueError(f"{what} needs a docstring: it is the CRD's description")
    return " ".join(inspect.cleandoc(text).split())


def _ordered(node: Schema) -> Schema:
    unknown = node.keys() - set(KEYWORD_ORDER)
    if unknown:
        raise TypeError(f"the CRD generator does not know {sorted(unknown)}: add to KEYWORD_ORDER")
    return {keyword: node[keyword] for keyword in KEYWORD_ORDER if keyword in node}
