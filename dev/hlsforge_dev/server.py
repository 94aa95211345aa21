"""The HTTP face of the emulated API server: kmock's emulator with its object handling replaced.

kmock serves discovery (`/api`, `/apis`, `/apis/GROUP/VERSION`, `/version`) from its resource
declarations; every resource URL is answered here from the `Store`, which has the semantics
Kopf and the `kubernetes` client need. kmock's own object handling is bypassed rather than
extended: it applies writes before routing (so a failed JSON-patch `test` could not become a
422 without a half-applied write), its fallback reactions share one mutable response (status
and headers would leak between requests), and its URL parser cannot address the Namespace
resource itself (`/api/v1/namespaces/NAME` reads as a namespace prefix). kmock's reaction DSL
(`server['get /path'] << ...`) still works for every non-resource path.

JSON only: protobuf request bodies get 415, so kubectl's typed commands (`kubectl create job`)
fail while `kubectl apply -f` works; lists are plain lists, not server-side tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
from typing_extensions import override

from hlsforge_dev.store import (
    MERGE_PATCH,
    ApiError,
    ResourceType,
    Selector,
    Store,
    field_selector,
    label_selector,
)

KEEP_REQUESTS = 1000  # kmock records every request; a long `make dev` session must not grow
VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def _json(payload: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.json_response(payload, status=status)


@dataclass(frozen=True)
class _Call:
    """A request for a resource URL: what it addresses and what it sent."""

    raw: aiohttp.web.BaseRequest
    resource: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    body: Any  # the parsed JSON body, or None

    @property
    def params(self) -> Mapping[str, str]:
        return self.raw.query

    @property
    def watching(self) -> bool:
        return self.params.get("watch") in ("true", "1")


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """kmock's KubernetesEmulator serving resources from a `Store` (built-in kinds loaded)."""

    store: Store = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store = Store(on_register=self._declare)
        # = self.resources.load_bundled(), without its deprecated importlib.resources call
        # (a DeprecationWarning, which the test suite turns into an error).
        bundled = importlib.resources.files("kmock._internal").joinpath("resources.json.gz")
        self.resources.load_data(gzip.decompress(bundled.read_bytes()))
        for key in list(self.resources):
            res, info = kmock.resource(key), self.resources[key]
            if res.group is not None and res.version is not None and res.plural is not None:
                self.store.register(
                    ResourceType(
                        group=res.group,
                        version=res.version,
                        plural=res.plural,
                        kind=info.kind or res.plural.capitalize(),
                        namespaced=bool(info.namespaced),
                        subresources=frozenset(info.subresources),
                        short_names=frozenset(info.shortnames),
                    )
                )
        namespaces = self.store.resolve("v1/namespaces")
        self.store.create(namespaces, None, {"metadata": {"name": "default"}})

    def _declare(self, resource: ResourceType) -> None:
        """Make a registered resource discoverable (Kopf and kubectl look it up first)."""
        key = kmock.resource(resource.group, resource.version, resource.plural)
        self.resources[key] = kmock.ResourceInfo(
            kind=resource.kind,
            singular=resource.kind.lower(),
            namespaced=resource.namespaced,
            verbs=set(VERBS),
            subresources=set(resource.subresources),
            shortnames=set(resource.short_names),
        )

    @override
    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        # kmock names the core group "/v1" and gives subresources (namespaces/status) their
        # parent's names; kubectl then cannot map `namespaces` or finds `ns` ambiguous.
        payload = await super()._serve_version(request)
        assert isinstance(payload, dict)
        payload["groupVersion"] = payload["groupVersion"].removeprefix("/")
        for entry in payload["resources"]:
            if "/" in entry["name"]:
                entry.update(singularName="", shortNames=[], categories=[])
        return payload

    @override
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        try:
            call = await self._route(raw_request)
            if call is None:  # discovery and user-declared reactions: kmock's own handling
                return await super().__call__(raw_request)
            return await self._serve(call)
        except ApiError as exc:
            return _json(exc.status(), exc.code)

    @override
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        del self._requests[:-KEEP_REQUESTS]
        # kmock's reactions, without the parent's object bookkeeping (the store does that).
        return await kmock.RawHandler._handle(self, request)

    async def _route(self, raw: aiohttp.web.BaseRequest) -> _Call | None:
        """What a resource URL addresses (None for other URLs), e.g.
        `/api/v1/namespaces/NS/pods/NAME/log`, `/apis/GROUP/VERSION/PLURAL`,
        `/api/v1/namespaces/NAME/status` (the Namespace resource itself)."""
        parts = raw.path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = self.store.find(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        resource = self.store.find(group, version, rest[0])
        if resource is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        data = await raw.read()
        if data and "protobuf" in raw.content_type:  # client-go then retries with JSON
            raise ApiError(415, "UnsupportedMediaType", "the emulator speaks JSON only")
        try:
            body = json.loads(data) if data.strip() else None
        except ValueError:
            body = None  # YAML (server-side apply) is refused by the patch code
        name = rest[1] if len(rest) > 1 else None
        subresource = "/".join(rest[2:]) or None
        return _Call(raw, resource, namespace, name, subresource, body)

    async def _serve(self, call: _Call) -> aiohttp.web.StreamResponse:
        store, method = self.store, call.raw.method
        resource, namespace, name, sub = call.resource, call.namespace, call.name, call.subresource
        if method == "GET":
            return await self._serve_read(call)
        if method == "POST" and name is None:
            return _json(store.create(resource, namespace, call.body), 201)
        if name is None or sub not in (None, "status"):
            raise ApiError(405, "MethodNotAllowed", f"the emulator does not serve {method} here")
        if method == "PATCH":
            content_type = call.raw.headers.get("Content-Type", MERGE_PATCH).split(";")[0].strip()
            body = store.patch(
                resource, namespace, name, call.body, content_type=content_type, subresource=sub
            )
        elif method == "PUT":
            body = store.replace(resource, namespace, name, call.body, subresource=sub)
        elif method == "DELETE":
            body = store.delete(resource, namespace, name, propagation=_policy(call))
        else:
            raise ApiError(405, "MethodNotAllowed", f"the emulator does not serve {method} here")
        return _json(body)

    async def _serve_read(self, call: _Call) -> aiohttp.web.StreamResponse:
        resource, namespace, name = call.resource, call.namespace, call.name
        if name is not None and not call.watching:
            if call.subresource == "log":
                return await self._stream_log(call, namespace or "default", name)
            if call.subresource not in (None, "status"):
                raise ApiError(405, "MethodNotAllowed", f"not served: {call.subresource!r}")
            return _json(self.store.get(resource, namespace, name))
        labels = label_selector(call.params.get("labelSelector"))
        # `GET .../NAME?watch=true` (kubectl get NAME -w) watches that object alone.
        fields = field_selector(
            f"metadata.name={name}" if name else call.params.get("fieldSelector")
        )

        def selects(obj: Mapping[str, Any]) -> bool:
            return labels(obj) and fields(obj)

        if call.watching:
            return await self._stream_watch(call, selects)
        items, rv = self.store.list(resource, namespace, selects)
        kind = f"{resource.kind}List"
        metadata = {"resourceVersion": rv}
        return _json({"apiVersion": resource.api_version, "kind": kind, "metadata": metadata,
                      "items": items})  # fmt: skip

    async def _stream_watch(self, call: _Call, selects: Selector) -> aiohttp.web.StreamResponse:
        params = call.params
        watch = self.store.watch(
            call.resource,
            call.namespace,
            since=params.get("resourceVersion"),
            selects=selects,
            initial_bookmark=params.get("sendInitialEvents") == "true",
        )
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await response.prepare(call.raw)
            async with asyncio.timeout(timeout):
                while (event := await watch.queue.get()) is not None:
                    await response.write(json.dumps(event).encode() + b"\n")
        except (TimeoutError, ConnectionError):
            pass  # timeoutSeconds reached (the client reconnects), or the client went away
        finally:
            self.store.unwatch(watch)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    async def _stream_log(
        self, call: _Call, namespace: str, name: str
    ) -> aiohttp.web.StreamResponse:
        pod = self.store.get(call.resource, namespace, name)
        containers = [c.get("name") for c in pod.get("spec", {}).get("containers") or []]
        container = call.params.get("container") or (containers[0] if containers else "")
        if container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        log = self.store.pod_log(namespace, name)
        if log is None:  # what the kubelet answers before the container started
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is '
                           "waiting to start: ContainerCreating")  # fmt: skip
        text, start = log.text(), len(log.chunks)
        if tail := call.params.get("tailLines"):
            text = b"".join(text.splitlines(keepends=True)[-int(tail) :]) if int(tail) else b""
        if call.params.get("follow") != "true":
            return aiohttp.web.Response(body=text, content_type="text/plain")
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        with contextlib.suppress(ConnectionError):
            await response.prepare(call.raw)
            await response.write(text)
            async for chunk in log.follow(start):
                await response.write(chunk)
            await response.write_eof()
        return response


def _policy(call: _Call) -> str | None:
    """The propagation policy from the DeleteOptions body or the query."""
    options = call.body if isinstance(call.body, dict) else {}
    policy = options.get("propagationPolicy") or call.params.get("propagationPolicy")
    orphan = options.get("orphanDependents", call.params.get("orphanDependents"))
    if policy is None and orphan is not None:
        policy = "Orphan" if orphan in (True, "true") else "Background"
    return str(policy) if policy else None
