"""The emulated API server's object store: Kubernetes semantics without HTTP.

kmock keeps objects as plain dicts and merges patches into them; Kopf and the `kubernetes`
client need what a real API server adds, so this store implements it (every method is sync
and runs on the emulator's event loop, which makes each write atomic):

- `metadata.uid`, a monotonic `resourceVersion` (also on lists), `creationTimestamp`,
  `generation` (bumped only when something outside `metadata`/`status` changes), generateName;
- optimistic concurrency: a stale `resourceVersion` in an update gives 409, a failed JSON-patch
  `test` op gives 422 (Kopf's finalizer patches rely on both);
- the `status` subresource: writes to `.../status` change only `status`, other writes keep it;
- finalizers (deletion only sets `deletionTimestamp` until the last one is removed; no new
  finalizers while deleting), graceful deletion of pods a kubelet runs (marked, then removed
  by the kubelet once stopped), and ownerReference garbage collection (Background or Orphan,
  cascading; deleting a batch/v1 Job without a propagationPolicy orphans its pods, as the
  real API does);
- watches that start after a `resourceVersion` (replayed from a bounded history; older ones get
  `410 Expired`), label and field selectors (an object leaving a watch's selector is DELETED
  for it); pod logs that followers stream live;
- the checks operators trip on: DNS-1123 names (Jobs at most 63 characters), label syntax,
  the Indexed Job fields (`hlsforge_dev.indexed.spec_errors`), Lease specs (a positive
  duration, MicroTime times); a Lease replaced at a stale resourceVersion gets 409, which is
  what leader election rests on;
  new pods start `Pending`; Secrets' `stringData` is stored as base64 `data`;
- CRDs: creating one serves its resource (as a real API server does), and updates of its
  objects must pass its CEL transition rules (`hlsforge_dev.validation`): 422 with the
  rule's message;
- namespace deletion: `Terminating`, everything in it deleted, gone once empty; no new
  content meanwhile (403).

Not emulated: admission, RBAC, defaulting and schema validation/pruning (and the CEL rules
that are not transition rules), strategic-merge list
semantics (treated as a JSON merge patch), server-side apply, Foreground deletion (treated as
Background), deleting dependents whose owner never existed, event TTL.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import copy
import datetime
import random
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import jsonpointer

from hlsforge_dev import indexed
from hlsforge_dev.validation import transition_failures

Body = dict[str, Any]
Selector = Callable[[Mapping[str, Any]], bool]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
HISTORY = 10_000  # watch events kept for watches resuming from a resourceVersion

# Set by the server only; kept from the stored object on every update.
_SERVER_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
)
# What the API server's create strategies put in the status of new objects.
_INITIAL_STATUS = {("", "pods"): {"phase": "Pending"}, ("", "namespaces"): {"phase": "Active"}}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")  # DNS-1123 subdomain
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
_SUFFIX = "bcdfghjklmnpqrstvwxz2456789"  # what the API server uses for generateName


class ApiError(Exception):
    """A failed API call; the server answers it as a `Status` with this HTTP code."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message

    def status(self) -> Body:
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


@dataclass(frozen=True)
class ResourceType:
    """A served resource (one group/version/plural) and what the store needs to know of it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: frozenset[str] = frozenset()
    short_names: frozenset[str] = frozenset()  # for kubectl (`kubectl get vt`)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def __str__(self) -> str:  # as in the API server's messages: `jobs.batch "x" not found`
        return f"{self.plural}.{self.group}" if self.group else self.plural


Key = tuple[ResourceType, str | None, str]


@dataclass(frozen=True)
class Change:
    """One write, as watchers see it (`old` lets selector watches see objects leave)."""

    type: str  # ADDED, MODIFIED or DELETED
    resource: ResourceType
    obj: Body
    old: Body | None
    rv: int


@dataclass(eq=False)
class Watch:
    """One watch stream: its filter and the queue of raw events (None ends the stream)."""

    resource: ResourceType
    namespace: str | None
    selects: Selector
    queue: asyncio.Queue[Body | None] = field(default_factory=asyncio.Queue)

    def offer(self, change: Change) -> None:
        if change.resource != self.resource:
            return
        if self.namespace is not None and change.obj["metadata"].get("namespace") != self.namespace:
            return
        now = change.type != "DELETED" and self.selects(change.obj)
        before = change.type == "DELETED" and self.selects(change.obj)
        before = before or (change.old is not None and self.selects(change.old))
        # As the real watch cache does: an object leaving a selector is DELETED for the watcher.
        kind = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else None
        if kind:
            self.queue.put_nowait({"type": kind, "object": change.obj})


class PodLog:
    """A container's output so far; followers get new chunks until the container ends."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False
        self._changed = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def text(self) -> bytes:
        return b"".join(self.chunks)

    async def follow(self, start: int = 0) -> AsyncIterator[bytes]:
        index = start
        while True:
            changed = self._changed
            while index < len(self.chunks):
                yield self.chunks[index]
                index += 1
            if self.closed:
                return
            await changed.wait()


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_patch(obj: Body, patch: Any, content_type: str) -> Body:
    """The object after a PATCH with this body and Content-Type."""
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
        try:
            result: Body = jsonpatch.apply_patch(obj, patch)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            # Kopf tests metadata.resourceVersion in its JSON patches and expects 422 on a miss.
            raise ApiError(422, "Invalid", f"the server rejected our request: {exc}") from exc
        return result
    if content_type in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        patched: Body = merge_patch(obj, patch)
        return patched
    raise ApiError(415, "UnsupportedMediaType", f"the emulator cannot apply {content_type!r}")


def _split_terms(text: str) -> list[str]:
    return [term.strip() for term in re.split(r",(?![^()]*\))", text) if term.strip()]


@dataclass(frozen=True)
class _Requirement:
    """One label requirement: `key in values` (negated for `notin`, `!=`, `!key`)."""

    key: str
    values: frozenset[str] | None  # None: the key exists
    negate: bool

    def __call__(self, labels: Mapping[str, str]) -> bool:
        found = self.key in labels if self.values is None else labels.get(self.key) in self.values
        return found != self.negate


def label_selector(text: str | None) -> Selector:
    """`a=b,c!=d,e,!f,g in (h,i),j notin (k)` as a predicate over objects."""
    checks: list[_Requirement] = []
    for term in _split_terms(text or ""):
        if m := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            values = frozenset(v.strip() for v in m[3].split(","))
            checks.append(_Requirement(m[1], values, m[2] == "notin"))
        elif m := re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)", term):
            checks.append(_Requirement(m[1], frozenset({m[3]}), m[2] == "!="))
        elif m := re.fullmatch(r"(!?)\s*([\w./-]+)", term):
            checks.append(_Requirement(m[2], None, bool(m[1])))
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")

    def selects(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return selects


def field_selector(text: str | None) -> Selector:
    """`metadata.name=x,status.phase!=Running`: equality on dotted paths, as strings."""
    checks: list[tuple[list[str], bool, str]] = []
    for term in _split_terms(text or ""):
        m = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        checks.append((m[1].split("."), m[2] != "!=", m[3]))

    def value_at(obj: Mapping[str, Any], path: list[str]) -> str:
        node: Any = obj
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        return "" if node is None else str(node)

    def selects(obj: Mapping[str, Any]) -> bool:
        return all((value_at(obj, path) == value) == equal for path, equal, value in checks)

    return selects


def select_all(_: Mapping[str, Any]) -> bool:
    return True


def _invalid(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def _validate(resource: ResourceType, obj: Body) -> None:
    """The checks a real server makes that a buggy operator hits first: names and labels."""
    meta = obj["metadata"]
    name = meta["name"]
    limit = 63 if (resource.group, resource.plural) == ("batch", "jobs") else 253
    if not _NAME.match(name) or len(name) > limit:
        raise _invalid(
            f'{resource} "{name}" is invalid: metadata.name: must be a lowercase '
            f"RFC 1123 subdomain of at most {limit} characters"
        )
    is_job = (resource.group, resource.plural) == ("batch", "jobs")
    if is_job and (errors := indexed.spec_errors(obj.get("spec") or {})):
        listed = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
        raise _invalid(f'{resource} "{name}" is invalid: {listed}')
    if (resource.group, resource.plural) == ("coordination.k8s.io", "leases"):
        _validate_lease_spec(f'{resource} "{name}"', obj.get("spec") or {})
    for key, value in (meta.get("labels") or {}).items():
        prefix, _, label = str(key).rpartition("/")
        ok_key = bool(_LABEL_NAME.match(label)) and len(label) <= 63
        ok_key = ok_key and (not prefix or (bool(_NAME.match(prefix)) and len(prefix) <= 253))
        ok_value = isinstance(value, str) and bool(_LABEL_VALUE.match(value)) and len(value) <= 63
        if not (ok_key and ok_value):
            raise _invalid(
                f'{resource} "{name}" is invalid: metadata.labels: invalid label {key!r}: {value!r}'
            )


def _validate_lease_spec(what: str, spec: Mapping[str, Any]) -> None:
    """The API server's Lease checks (ValidateLeaseSpec): a positive duration, no negative
    transition count, and times in the MicroTime format."""
    duration, transitions = spec.get("leaseDurationSeconds"), spec.get("leaseTransitions")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        raise _invalid(f"{what} is invalid: spec.leaseDurationSeconds: Invalid value: "
                       f"{duration}: must be greater than 0")  # fmt: skip
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        raise _invalid(f"{what} is invalid: spec.leaseTransitions: Invalid value: "
                       f"{transitions}: must be greater than or equal to 0")  # fmt: skip
    for field_name in ("acquireTime", "renewTime"):
        value = spec.get(field_name)
        if value is not None and not (isinstance(value, str) and _MICRO_TIME.match(value)):
            raise ApiError(400, "BadRequest", f"{what}: spec.{field_name}: not a MicroTime "
                           "(RFC 3339 with microseconds)")  # fmt: skip


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


class Store:
    """Objects by (resource, namespace, name), with the API server's write semantics."""

    def __init__(self, *, on_register: Callable[[ResourceType], None] | None = None) -> None:
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.listeners: list[Callable[[Change], None]] = []  # e.g. the JobRunner's wake-up
        # Whether a kubelet runs this pod: deleting it then only marks it, and the kubelet
        # removes it once its containers have stopped (graceful deletion). Set by the JobRunner.
        self.runs_pod: Callable[[Body], bool] = lambda _: False
        self._on_register = on_register
        self._objects: dict[ResourceType, dict[tuple[str | None, str], Body]] = {}
        self._by_uid: dict[str, Key] = {}
        self._dependents: dict[str, set[Key]] = {}  # owner uid → keys of its dependents
        self._policies: dict[str, str] = {}  # uid → propagation policy of a pending deletion
        self._rv = 0
        self._history: deque[Change] = deque(maxlen=HISTORY)
        self._forgotten_rv = 0  # the newest resourceVersion dropped from the history
        self._watches: set[Watch] = set()
        self._logs: dict[tuple[str, str], PodLog] = {}
        self._schemas: dict[tuple[str, str, str], Body] = {}  # from CRDs: (group, version, plural)

    # Resources

    def register(self, resource: ResourceType) -> None:
        self.types[resource.group, resource.version, resource.plural] = resource
        if self._on_register is not None:
            self._on_register(resource)

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def resolve(self, spec: str) -> ResourceType:
        """`batch/v1/jobs`, `v1/pods`, `hlsforge.dev/v1alpha1/videotranscodes`, or a plural."""
        parts = spec.strip("/").split("/")
        if len(parts) == 1:
            found = [t for t in self.types.values() if t.plural == parts[0]]
            found = [t for t in found if not t.group] or found  # core v1 wins, as for kubectl
            if len(found) == 1:
                return found[0]
        else:
            group, version, plural = ("", *parts) if len(parts) == 2 else parts
            if resource := self.find(group, version, plural):
                return resource
        raise ApiError(404, "NotFound", f"the server could not find the resource {spec!r}")

    # Reads

    def get(self, resource: ResourceType, namespace: str | None, name: str) -> Body:
        """The stored object: treat it as read-only (every write stores a new dict)."""
        return self._require(self._key(resource, namespace, name))

    def list(
        self, resource: ResourceType, namespace: str | None = None, selects: Selector = select_all
    ) -> tuple[list[Body], str]:
        """Matching objects and the list's resourceVersion (where a watch can resume)."""
        objects = self._objects.get(resource, {})
        items = [
            obj
            for (ns, _), obj in objects.items()
            if (namespace is None or ns == namespace) and selects(obj)
        ]
        return items, str(self._rv)

    def dependents(self, owner_uid: str) -> builtins.list[Body]:
        """The objects with an ownerReference to this uid (what the GC would collect)."""
        keys = self._dependents.get(owner_uid, set())
        return [obj for key in keys if (obj := self._find(key)) is not None]

    def find_uid(self, uid: str) -> Body | None:
        key = self._by_uid.get(uid)
        return None if key is None else self._require(key)

    # Writes

    def create(self, resource: ResourceType, namespace: str | None, body: Any) -> Body:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.get("metadata")
        meta = obj["metadata"] = dict(meta) if isinstance(meta, dict) else {}
        if resource.namespaced:
            namespace = namespace or meta.get("namespace") or "default"
            if meta.get("namespace") not in (None, namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does "
                    "not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
            if self._terminating(namespace):
                raise ApiError(
                    403,
                    "Forbidden",
                    f"unable to create new content in namespace {namespace} "
                    "because it is being terminated",
                )
        else:
            namespace = None
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _invalid("metadata.name: Required value: name or generateName is required")
            meta["name"] = self._generate_name(resource, namespace, str(meta["generateName"]))
        key = (resource, namespace, str(meta["name"]))
        if self._find(key) is not None:
            raise ApiError(409, "AlreadyExists", f'{resource} "{key[2]}" already exists')
        if resource.has_status:  # the status subresource: status is not settable on create
            obj.pop("status", None)
            if initial := _INITIAL_STATUS.get((resource.group, resource.plural)):
                obj["status"] = dict(initial)
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        meta.update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(self._next_rv()),
            generation=1,
            creationTimestamp=now_iso(),
        )
        obj = self._normalize(resource, obj)
        _validate(resource, obj)
        self._put(key, obj)
        self._emit("ADDED", resource, obj, None)
        if (resource.group, resource.plural) == (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
        ):
            self._serve_crd(obj)
        return obj

    def update(
        self,
        resource: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[Body], Any],
        *,
        subresource: str | None = None,
    ) -> Body:
        """Store `change(a copy of the object)` with the server-managed parts protected."""
        key = self._key(resource, namespace, name)
        old = self._require(key)
        if subresource is not None and (subresource != "status" or not resource.has_status):
            raise ApiError(404, "NotFound", f"{resource} has no subresource {subresource!r}")
        new = change(copy.deepcopy(old))
        if not isinstance(new, dict):
            raise ApiError(422, "Invalid", "the patched object is not a JSON object")
        old_meta = old["metadata"]
        meta: Body = new["metadata"] if isinstance(new.get("metadata"), dict) else {}
        if meta.get("resourceVersion") not in (None, "", old_meta["resourceVersion"]):
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource} "{name}": '
                "the object has been modified; please apply your changes to the "
                "latest version and try again",
            )
        if subresource == "status":  # `.../status` changes the status and nothing else
            new = {**{k: v for k, v in old.items() if k != "status"}, "status": new.get("status")}
            meta = old_meta
        elif resource.has_status:  # the main resource's writes leave the status alone
            new = {**{k: v for k, v in new.items() if k != "status"}, "status": old.get("status")}
        if new.get("status") is None:
            new.pop("status", None)
        new["metadata"] = {
            **{k: v for k, v in meta.items() if k not in _SERVER_METADATA},
            **{k: old_meta[k] for k in _SERVER_METADATA if k in old_meta},
        }
        new = self._normalize(resource, new)
        finalizers = set(new["metadata"].get("finalizers") or [])
        if old_meta.get("deletionTimestamp") and finalizers - set(old_meta.get("finalizers") or []):
            raise _invalid(
                "metadata.finalizers: Forbidden: no new finalizers can be added if "
                "the object is being deleted"
            )
        if new == old:  # a no-op write: no new resourceVersion, no watch event
            return old
        _validate(resource, new)
        self._check_transitions(resource, new, old)
        if _spec_part(new) != _spec_part(old):
            new["metadata"]["generation"] = int(old_meta.get("generation") or 0) + 1
        new["metadata"]["resourceVersion"] = str(self._next_rv())
        self._put(key, new)
        self._emit("MODIFIED", resource, new, old)
        stopping = (resource.group, resource.plural) == ("", "pods") and self.runs_pod(new)
        if new["metadata"].get("deletionTimestamp") and not finalizers and not stopping:
            return self._remove(key, self._policies.get(new["metadata"]["uid"], "Background"))
        if (resource.group, resource.plural) == (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
        ):
            self._serve_crd(new)
        return new

    def patch(
        self,
        resource: ResourceType,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        content_type: str = MERGE_PATCH,
        subresource: str | None = None,
    ) -> Body:
        def change(obj: Body) -> Body:
            return apply_patch(obj, patch, content_type)

        return self.update(resource, namespace, name, change, subresource=subresource)

    def replace(
        self,
        resource: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
    ) -> Body:
        """PUT: the body replaces the object (a given resourceVersion must be current)."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        return self.update(resource, namespace, name, lambda _: body, subresource=subresource)

    def set_status(
        self, resource: ResourceType, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> Body:
        """Replace the whole status (what controllers do through `.../status`)."""
        return self.update(
            resource,
            namespace,
            name,
            lambda obj: {**obj, "status": dict(status)},
            subresource="status" if resource.has_status else None,
        )

    def delete(
        self,
        resource: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
    ) -> Body:
        """Delete now, or only mark for deletion while finalizers remain.

        `propagation` is the DeleteOptions' propagationPolicy. Without one, Jobs orphan their
        pods as in real Kubernetes (batch/v1 keeps that legacy default and warns about it):
        pass "Background" to delete them too. Foreground is treated as Background.
        """
        key = self._key(resource, namespace, name)
        obj = self._require(key)
        jobs = (resource.group, resource.plural) == ("batch", "jobs")
        policy = propagation or ("Orphan" if jobs else "Background")
        if policy not in ("Background", "Foreground", "Orphan"):
            raise ApiError(400, "BadRequest", f"unknown propagationPolicy {policy!r}")
        if (resource.group, resource.plural) == ("", "namespaces"):
            return self._terminate_namespace(key, obj)
        meta = obj["metadata"]
        pod = (resource.group, resource.plural) == ("", "pods")
        graceful = pod and self.runs_pod(obj)  # once stopped, deleting again removes it
        if not meta.get("finalizers") and not graceful:
            return self._remove(key, policy)
        if meta.get("deletionTimestamp"):
            return obj
        self._policies[meta["uid"]] = policy
        marked = {**meta, "deletionTimestamp": now_iso(), "deletionGracePeriodSeconds": 0}
        marked["resourceVersion"] = str(self._next_rv())
        new = {**obj, "metadata": marked}
        self._put(key, new)
        self._emit("MODIFIED", resource, new, obj)
        return new

    # Watches and logs

    def watch(
        self,
        resource: ResourceType,
        namespace: str | None = None,
        *,
        since: str | None = None,
        selects: Selector = select_all,
        initial_bookmark: bool = False,
    ) -> Watch:
        """A watch from `since` (a resourceVersion), or from now with the current objects."""
        watch = Watch(resource, namespace, selects)
        if since in (None, "", "0"):
            items, rv = self.list(resource, namespace, selects)
            for obj in items:
                watch.queue.put_nowait({"type": "ADDED", "object": obj})
            if initial_bookmark:  # the end of `sendInitialEvents=true` (Kopf's initial streaming)
                meta = {"resourceVersion": rv, "annotations": {"k8s.io/initial-events-end": "true"}}
                bookmark = {
                    "apiVersion": resource.api_version,
                    "kind": resource.kind,
                    "metadata": meta,
                }
                watch.queue.put_nowait({"type": "BOOKMARK", "object": bookmark})
        else:
            try:
                start = int(str(since))
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {since!r}") from None
            if start < self._forgotten_rv:  # the real server's answer too: relist, then watch
                expired = ApiError(410, "Expired", f"too old resource version: {start}")
                watch.queue.put_nowait({"type": "ERROR", "object": expired.status()})
                watch.queue.put_nowait(None)
                return watch
            for change in self._history:
                if change.rv > start:
                    watch.offer(change)
        self._watches.add(watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        self._watches.discard(watch)

    def open_log(self, namespace: str, pod: str) -> PodLog:
        """The log a starting container writes to (replacing an earlier one)."""
        log = self._logs[namespace, pod] = PodLog()
        return log

    def pod_log(self, namespace: str, pod: str) -> PodLog | None:
        return self._logs.get((namespace, pod))

    def shutdown(self) -> None:
        """End every watch and log stream (the server is stopping)."""
        for watch in self._watches:
            watch.queue.put_nowait(None)
        self._watches.clear()
        for log in self._logs.values():
            log.close()

    # Internals

    def _key(self, resource: ResourceType, namespace: str | None, name: str) -> Key:
        return resource, (namespace or "default") if resource.namespaced else None, name

    def _find(self, key: Key) -> Body | None:
        return self._objects.get(key[0], {}).get((key[1], key[2]))

    def _require(self, key: Key) -> Body:
        if (obj := self._find(key)) is None:
            raise ApiError(404, "NotFound", f'{key[0]} "{key[2]}" not found')
        return obj

    def _put(self, key: Key, obj: Body) -> None:
        """Store the object, indexed by uid and by the uids of its owners (for the GC)."""
        if (old := self._find(key)) is not None:
            for ref in old["metadata"].get("ownerReferences") or []:
                self._dependents.get(str(ref.get("uid")), set()).discard(key)
        self._objects.setdefault(key[0], {})[key[1], key[2]] = obj
        self._by_uid[obj["metadata"]["uid"]] = key
        for ref in obj["metadata"].get("ownerReferences") or []:
            self._dependents.setdefault(str(ref.get("uid")), set()).add(key)

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _generate_name(self, resource: ResourceType, namespace: str | None, prefix: str) -> str:
        while True:
            name = prefix[:58] + "".join(random.choices(_SUFFIX, k=5))  # noqa: S311
            if self._find((resource, namespace, name)) is None:
                return name

    def _normalize(self, resource: ResourceType, obj: Body) -> Body:
        """What the server's serialization does: apiVersion/kind first, no empty metadata lists;
        Secrets' `stringData` becomes base64 `data`."""
        meta = obj["metadata"]
        for optional in ("labels", "annotations", "finalizers", "ownerReferences"):
            if not meta.get(optional):
                meta.pop(optional, None)
        rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        obj = {"apiVersion": resource.api_version, "kind": resource.kind, **rest}
        if (resource.group, resource.plural) == ("", "secrets") and "stringData" in obj:
            data = dict(obj.get("data") or {})
            for name, value in (obj.pop("stringData") or {}).items():
                data[name] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        return obj

    def _emit(self, kind: str, resource: ResourceType, obj: Body, old: Body | None) -> None:
        change = Change(kind, resource, obj, old, self._rv)
        if len(self._history) == self._history.maxlen:
            self._forgotten_rv = self._history[0].rv
        self._history.append(change)
        for watch in self._watches:
            watch.offer(change)
        for listener in list(self.listeners):
            listener(change)

    def _remove(self, key: Key, policy: str) -> Body:
        obj = self._objects[key[0]].pop((key[1], key[2]))
        uid = obj["metadata"]["uid"]
        del self._by_uid[uid]
        for ref in obj["metadata"].get("ownerReferences") or []:
            self._dependents.get(str(ref.get("uid")), set()).discard(key)
        self._policies.pop(uid, None)
        gone = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._next_rv())}}
        self._emit("DELETED", key[0], gone, obj)
        if (key[0].group, key[0].plural) == ("", "pods") and (
            log := self._logs.pop((str(key[1]), key[2]), None)
        ):
            log.close()
        self._collect_garbage(uid, policy)
        if key[1] is not None:
            self._remove_namespace_if_emptied(key[1])
        return gone

    # The namespace controller

    def _namespace_key(self, name: str) -> Key | None:
        namespaces = self.find("", "v1", "namespaces")
        return None if namespaces is None else (namespaces, None, name)

    def _terminating(self, namespace: str) -> bool:
        key = self._namespace_key(namespace)
        found = None if key is None else self._find(key)
        return found is not None and bool(found["metadata"].get("deletionTimestamp"))

    def _terminate_namespace(self, key: Key, obj: Body) -> Body:
        """Phase Terminating, then every object in it deleted (finalizers and graceful pod
        deletion still hold them); the namespace goes once nothing is left in it."""
        if not obj["metadata"].get("deletionTimestamp"):
            meta = {**obj["metadata"], "deletionTimestamp": now_iso(),
                    "resourceVersion": str(self._next_rv())}  # fmt: skip
            marked = {**obj, "metadata": meta, "status": {"phase": "Terminating"}}
            self._put(key, marked)
            self._emit("MODIFIED", key[0], marked, obj)
            obj = marked
        name = key[2]
        for resource, objects in list(self._objects.items()):
            for namespace, object_name in [k for k in objects if k[0] == name]:
                if self._find((resource, namespace, object_name)) is not None:  # not cascaded
                    self.delete(resource, namespace, object_name, propagation="Background")
        return self._remove_namespace_if_emptied(name) or obj

    def _remove_namespace_if_emptied(self, name: str) -> Body | None:
        key = self._namespace_key(name)
        if key is None or not self._terminating(name):
            return None
        if any(k[0] == name for objects in self._objects.values() for k in objects):
            return None
        return self._remove(key, "Background")

    def _collect_garbage(self, owner_uid: str, policy: str) -> None:
        """What the garbage collector does once an owner is gone: delete its dependents
        (which cascades) unless another owner still exists; with Orphan, only unlink them."""
        for key in sorted(self._dependents.pop(owner_uid, set()), key=str):
            obj = self._find(key)
            if obj is None:  # removed by an earlier cascade
                continue
            refs = obj["metadata"].get("ownerReferences") or []
            others = [ref for ref in refs if ref.get("uid") != owner_uid]
            if policy == "Orphan" or any(ref.get("uid") in self._by_uid for ref in others):

                def unlink(o: Body, keep: list[Any] = others) -> Body:
                    return {**o, "metadata": {**o["metadata"], "ownerReferences": keep}}

                self.update(*key, unlink)
            else:
                self.delete(*key, propagation="Background")

    def _check_transitions(self, resource: ResourceType, new: Body, old: Body) -> None:
        """A CRD's transition rules, on every update of its objects."""
        schema = self._schemas.get((resource.group, resource.version, resource.plural))
        if schema is None:
            return
        failures = transition_failures(schema, new, old)
        if failures:
            causes = [f'{path}: Invalid value: "object": {message}' for path, message in failures]
            listed = causes[0] if len(causes) == 1 else f"[{', '.join(causes)}]"
            kind = f"{resource.kind}.{resource.group}"
            raise _invalid(f'{kind} "{new["metadata"]["name"]}" is invalid: {listed}')

    def _serve_crd(self, crd: Body) -> None:
        """A CustomResourceDefinition serves its resource at once (the real server's
        establishing controller); its schema is not enforced."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            key = (spec.get("group", ""), version["name"], names.get("plural", ""))
            if schema:
                self._schemas[key] = schema
            else:
                self._schemas.pop(key, None)
            if version.get("served", True):
                self.register(
                    ResourceType(
                        group=spec.get("group", ""),
                        version=version["name"],
                        plural=names.get("plural", ""),
                        kind=names.get("kind", ""),
                        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                        subresources=frozenset(version.get("subresources") or {}),
                        short_names=frozenset(names.get("shortNames") or ()),
                    )
                )
