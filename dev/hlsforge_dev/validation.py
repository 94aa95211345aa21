"""The CEL transition rules of a CustomResourceDefinition, as the API server applies them on
updates (`x-kubernetes-validations` whose rule uses `oldSelf`; Kubernetes documents them under
"Transition rules" of the CRD validation rules).

- A rule runs on an update only, and only where the old object has a value at its path too
  (object properties; rules inside lists are not emulated);
- `self` and `oldSelf` are the objects with the schema's defaults filled in, as stored;
- a list with `x-kubernetes-list-type: map` compares as a map keyed by its map keys, so the
  order of its items does not count (the `cel` package compares lists in order: such lists
  are sorted by their keys first);
- a rule that is false, or fails to evaluate, rejects the update: 422 Invalid, with the rule's
  message at the rule's path.

Not emulated: the other rules (on create), OpenAPI schema validation, pruning and defaulting
of what is stored (objects are stored as sent).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import cel

Schema = dict[str, Any]


def uses_old_self(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


def with_defaults(schema: Schema, value: Any) -> Any:
    """Structural defaulting: missing properties with a `default`, recursively."""
    if isinstance(value, dict) and "properties" in schema:
        properties: Schema = schema["properties"]
        filled = dict(value)
        for name, node in properties.items():
            if name not in filled and "default" in node:
                filled[name] = copy.deepcopy(node["default"])
        return {
            k: with_defaults(properties[k], v) if k in properties else v for k, v in filled.items()
        }
    if isinstance(value, list) and "items" in schema:
        return [with_defaults(schema["items"], item) for item in value]
    return value


def as_map_lists(schema: Schema, value: Any) -> Any:
    """Lists with map keys sorted by their keys, so that CEL's `==` ignores their order."""
    if isinstance(value, dict) and "properties" in schema:
        properties: Schema = schema["properties"]
        return {
            k: as_map_lists(properties[k], v) if k in properties else v for k, v in value.items()
        }
    if isinstance(value, list) and "items" in schema:
        items = [as_map_lists(schema["items"], item) for item in value]
        if schema.get("x-kubernetes-list-type") == "map":
            keys = schema.get("x-kubernetes-list-map-keys") or []
            items.sort(key=lambda item: json.dumps([item.get(key) for key in keys], default=str))
        return items
    return value


def _holds(rule: str, new: Any, old: Any) -> bool:
    try:
        return cel.evaluate(rule, {"self": new, "oldSelf": old}) is True
    except Exception:  # no such key, a type error...: the rule fails, as in Kubernetes
        return False


def _failures(schema: Schema, new: Any, old: Any, path: str) -> Iterator[tuple[str, str]]:
    if not (isinstance(new, dict) and isinstance(old, dict)):
        return
    for validation in schema.get("x-kubernetes-validations") or []:
        rule = str(validation.get("rule", ""))
        if uses_old_self(rule) and not _holds(
            rule, as_map_lists(schema, new), as_map_lists(schema, old)
        ):
            yield path or "<root>", str(validation.get("message") or f"failed rule: {rule}")
    for name, node in (schema.get("properties") or {}).items():
        if name in new and name in old:
            yield from _failures(node, new[name], old[name], f"{path}.{name}".lstrip("."))


def transition_failures(schema: Schema, new: Any, old: Any) -> list[tuple[str, str]]:
    """(path, message) of each transition rule that rejects updating `old` to `new`."""
    return list(_failures(schema, with_defaults(schema, new), with_defaults(schema, old), ""))
