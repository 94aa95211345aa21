"""`EmulatedCluster`: an emulated Kubernetes API server on loopback, in a thread of its own.

The server runs its own asyncio loop in a background thread, so any caller can use it: pytest
tests (sync or async), Kopf (`KopfRunner` runs in another thread), the `kubernetes` client,
kubectl, and the `JobRunner` (which schedules its work on the same loop). It serves the
built-in kinds (kmock's bundled discovery data) and `VideoTranscode`; see `hlsforge_dev.store`
for the semantics emulated and those that are not. Nothing runs Jobs unless a `JobRunner` does.
`python -m hlsforge_dev` runs both until Ctrl-C and writes a kubeconfig for kubectl.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import json
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp.web
import yaml

from hlsforge_dev.server import ApiServer
from hlsforge_dev.store import MERGE_PATCH, ApiError, Body, ResourceType, Store, label_selector
from videotranscode import GROUP, KIND, PLURAL, VERSION

T = TypeVar("T")

PODS = "v1/pods"
SECRETS = "v1/secrets"
JOBS = "batch/v1/jobs"
VIDEOTRANSCODES = f"{GROUP}/{VERSION}/{PLURAL}"
CRDS = "apiextensions.k8s.io/v1/customresourcedefinitions"
CALL_TIMEOUT = 30.0


class EmulatedCluster:
    """An API server on `host` (a free port unless `port` is given), started by `start()`.

    Resources are named as `"batch/v1/jobs"`, `"v1/pods"` or `VIDEOTRANSCODES`; the helpers
    raise `ApiError` (with `.code` 404, 409, 422 ...) as the API would answer.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ApiServer | None = None
        self._runner: aiohttp.web.ServerRunner | None = None
        self._url: str | None = None

    # Lifecycle

    def start(self) -> Self:
        if self._loop is not None:
            raise RuntimeError("the cluster is already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="hlsforge-dev-apiserver", daemon=True
        )
        self._thread.start()
        try:
            self.run(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running():
                self.run(self._stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=CALL_TIMEOUT)
            loop.close()
            self._loop = self._thread = self._server = self._runner = None
            self._url = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    async def _start(self) -> None:
        server = ApiServer()
        await server.__aenter__()  # kmock's handler must be entered to serve
        self._server = server
        # As the CRD declares it, with its shortNames (`kubectl get vt`).
        transcodes = ResourceType(
            GROUP, VERSION, PLURAL, KIND, subresources=frozenset({"status"}),
            short_names=frozenset({"vt"}),
        )  # fmt: skip
        server.store.register(transcodes)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        # handler_cancellation: a client closing a watch or log stream ends its handler at once.
        web_server = aiohttp.web.Server(server, handler_cancellation=True, access_log=None)
        self._runner = aiohttp.web.ServerRunner(web_server, shutdown_timeout=1.0)
        await self._runner.setup()
        await aiohttp.web.SockSite(self._runner, sock).start()
        self._url = f"http://{self._host}:{sock.getsockname()[1]}"

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.store.shutdown()  # ends watch and log streams so clients let go
        if self._runner is not None:
            await self._runner.cleanup()
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)

    # Access

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the cluster is not started")
        return self._url

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the cluster is not started")
        return self._loop

    @property
    def store(self) -> Store:
        """The object store: use it only on `loop` (through `call`/`run`, or from its tasks)."""
        if self._server is None:
            raise RuntimeError("the cluster is not started")
        return self._server.store

    @property
    def server(self) -> ApiServer:
        """The kmock handler (for kmock's DSL and request history on non-resource paths)."""
        if self._server is None:
            raise RuntimeError("the cluster is not started")
        return self._server

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("run() would deadlock on the server's own loop thread")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=CALL_TIMEOUT)

    def call(self, fn: Callable[[], T]) -> T:
        """Call `fn()` on the server's loop (where the store may be used) and return its result."""
        if threading.current_thread() is self._thread:
            return fn()

        async def call() -> T:
            return fn()

        return self.run(call())

    def write_kubeconfig(self, path: Path | str) -> Path:
        """A kubeconfig whose current context is this server (plain HTTP, no auth, `default`)."""
        name = "hlsforge-dev"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}
            ],
            "current-context": name,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(config, indent=2) + "\n")  # JSON is valid YAML
        return target

    # Typed helpers (copies of the stored objects; errors raise ApiError)

    def get(self, resource: str, namespace: str | None, name: str) -> Body:
        def get() -> Body:
            return copy.deepcopy(self.store.get(self.store.resolve(resource), namespace, name))

        return self.call(get)

    def find(self, resource: str, namespace: str | None, name: str) -> Body | None:
        """Like `get`, but None when the object does not exist."""
        try:
            return self.get(resource, namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def list(
        self, resource: str, namespace: str | None = None, *, labels: str | None = None
    ) -> builtins.list[Body]:
        """Objects in `namespace` (None: all), optionally matching a label selector."""

        def list_() -> builtins.list[Body]:
            store = self.store
            items, _ = store.list(store.resolve(resource), namespace, label_selector(labels))
            return copy.deepcopy(items)

        return self.call(list_)

    def create(
        self, resource: str, body: Mapping[str, Any], *, namespace: str | None = None
    ) -> Body:
        def create() -> Body:
            store = self.store
            return copy.deepcopy(store.create(store.resolve(resource), namespace, dict(body)))

        return self.call(create)

    def apply_crds(self, path: Path) -> None:
        """`kubectl apply -f PATH` for a file of CRDs: their CEL rules are enforced from now."""
        for crd in yaml.safe_load_all(path.read_text()):
            self.create(CRDS, crd)

    def patch(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any] | builtins.list[Any],
        *,
        content_type: str = MERGE_PATCH,
        subresource: str | None = None,
    ) -> Body:
        def patch_() -> Body:
            store = self.store
            body = store.patch(
                store.resolve(resource),
                namespace,
                name,
                patch,
                content_type=content_type,
                subresource=subresource,
            )
            return copy.deepcopy(body)

        return self.call(patch_)

    def patch_status(
        self, resource: str, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> Body:
        """Merge-patch the status through the status subresource (as controllers do)."""
        return self.patch(resource, namespace, name, {"status": dict(status)}, subresource="status")

    def delete(
        self, resource: str, namespace: str | None, name: str, *, propagation: str | None = None
    ) -> Body:
        """Delete (or mark for deletion while finalizers remain); see `Store.delete`."""

        def delete() -> Body:
            store = self.store
            body = store.delete(store.resolve(resource), namespace, name, propagation=propagation)
            return copy.deepcopy(body)

        return self.call(delete)

    def wait_for(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        condition: Callable[[Body | None], bool],
        *,
        timeout: float = 30.0,
    ) -> Body | None:
        """Poll until `condition(object or None)` holds; return that object, or TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.find(resource, namespace, name)
            if condition(obj):
                return obj
            if time.monotonic() > deadline:
                raise TimeoutError(f"{resource} {namespace}/{name} did not get there: {obj}")
            time.sleep(0.05)
