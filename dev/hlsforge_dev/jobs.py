"""`JobRunner`: the Job controller and the kubelet for an `EmulatedCluster`.

It runs on the cluster's event loop, reconciling whenever Jobs, Pods or Secrets change (and
every `TICK` seconds for deadlines), and does what the real controllers do for batch/v1 Jobs
with `completions` and `parallelism` of 1, and for Indexed Jobs (`hlsforge_dev.indexed`):

- Job controller: one Pod per attempt (`<job>-<5 chars>`, the template's labels plus `job-name`,
  `batch.kubernetes.io/job-name` and `controller-uid`, a controller ownerReference); status
  `startTime`, `active`, `ready`, `succeeded`, `failed`, `completionTime` and the conditions
  `SuccessCriteriaMet`+`Complete` or `FailureTarget`+`Failed` (BackoffLimitExceeded,
  PodFailurePolicy, DeadlineExceeded); `backoffLimit` (retries at once, without the real
  10 s exponential delay), `podFailurePolicy` (FailJob/Ignore/Count on exit codes and pod
  conditions), `activeDeadlineSeconds`, `ttlSecondsAfterFinished`, `suspend`; a pod deleted
  while it runs counts as failed (one held by finalizers is replaced once it has stopped).
- kubelet: runs each Pending pod whose restartPolicy is Never/OnFailure (OnFailure is not
  restarted in place) as a local process, at most `max_parallel` at once (the others stay
  Pending, unschedulable). The single container's `command` + `args` run with a leading
  `hlsforge-worker` replaced by `worker_command`; env, `$(VAR)` references, secretKeyRef,
  configMapKeyRef, fieldRef and envFrom are resolved; the termination-message path and emptyDir
  mounts are mapped to a per-pod temp dir (also in args and env values). Output (stdout and
  stderr, as `kubectl logs` shows them) streams into the pod's log. On exit the termination
  message (or, with FallbackToLogsOnError, the log's tail), exit code and reason go into the
  container's `state.terminated`. Deleting a pod that runs only marks it (graceful deletion):
  it gets SIGTERM, then SIGKILL after its grace period (at most `MAX_GRACE` s), and the pod
  object goes once its process has stopped, so "no pod left" means no worker left.

Not emulated: images (the local environment runs), resources and limits, probes, init and
sidecar containers, NonIndexed Jobs with completions/parallelism above 1, pod restarts in
place, suspending an Indexed Job, `successPolicy`, `podReplacementPolicy` (a pod being deleted
is always replaced once it has stopped).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from hlsforge_dev import indexed
from hlsforge_dev.cluster import EmulatedCluster
from hlsforge_dev.store import (
    ApiError,
    Body,
    Change,
    PodLog,
    ResourceType,
    Store,
    now_iso,
    parse_time,
)
from videotranscode.slicing import format_indexes

logger = logging.getLogger(__name__)

TICK = 0.2  # seconds between reconciles when nothing changes (free slots, Secrets)
RESYNC = 1.0  # seconds between syncs of every Job (deadlines, TTLs)
MAX_GRACE = 2.0  # seconds from SIGTERM to SIGKILL, whatever terminationGracePeriodSeconds says
WORKER = "hlsforge-worker"
MESSAGE_LIMIT = 4096  # bytes of a termination message the kubelet keeps
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048  # the log tail FallbackToLogsOnError uses
TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodRun:
    """What a `run_pod` hook gets: the pod as the kubelet would start it."""

    namespace: str
    name: str
    job_name: str | None
    argv: tuple[str, ...]  # command + args, `hlsforge-worker` replaced, paths mapped
    args: tuple[str, ...]  # the container's args alone
    env: Mapping[str, str]  # the container's resolved env (not the inherited environment)
    pod: Body


@dataclass(frozen=True)
class PodExit:
    """How a pod's container ended (what a `run_pod` hook returns)."""

    exit_code: int = 0
    message: str = ""  # the termination message
    logs: Sequence[str] = ()  # lines for the pod's log


RunPod = Callable[[PodRun], PodExit | Awaitable[PodExit]]


def completes_at_once(message: str | Callable[[PodRun], str] = "") -> RunPod:
    """A `run_pod` hook: every container exits 0 at once with this termination message."""

    def run_pod(run: PodRun) -> PodExit:
        return PodExit(0, message(run) if callable(message) else message)

    return run_pod


class _ConfigError(Exception):
    """The container cannot start yet (a missing Secret or key): CreateContainerConfigError."""


@dataclass(eq=False)
class _Run:
    """A pod the kubelet has started: its process (if any) and its task."""

    namespace: str
    name: str
    grace: float
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    terminating: bool = False

    def signal(self, sig: signal.Signals) -> bool:
        if self.process is None or self.process.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError):  # the whole group: FFmpeg children too
            os.killpg(self.process.pid, sig)
        return True

    def terminate(self) -> None:
        if not self.terminating:
            self.terminating = True
            if self.signal(signal.SIGTERM):
                asyncio.get_running_loop().call_later(self.grace, self.signal, signal.SIGKILL)
            elif self.task is not None:  # a hook run: nothing to signal
                self.task.cancel()


@dataclass(frozen=True)
class _Sandbox:
    """Where and how a container runs locally: paths inside it mapped to a pod directory."""

    argv: list[str]
    args: list[str]
    env: dict[str, str]
    cwd: Path
    termination_log: Path
    fallback_to_logs: bool

    @classmethod
    def prepare(cls, pod: Body, env: dict[str, str], workdir: Path, worker: list[str]) -> _Sandbox:
        spec = pod.get("spec") or {}
        container = (spec.get("containers") or [{}])[0]
        termination_log = workdir / "termination-log"
        termination_log.touch()
        message_path = str(container.get("terminationMessagePath", "/dev/termination-log"))
        mounts = {message_path: termination_log}
        empty_dirs = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") in empty_dirs:
                local = workdir / "volumes" / str(mount["name"])
                local.mkdir(parents=True, exist_ok=True)
                mounts[str(mount["mountPath"])] = local
        env = {key: _map_path(value, mounts) for key, value in env.items()}
        scratch = Path(env.get("HLSFORGE_SCRATCH_DIR", ""))
        if not scratch.is_relative_to(workdir):  # not an emptyDir: a scratch dir of its own
            scratch = workdir / "scratch"
            scratch.mkdir()
        env.update(HLSFORGE_TERMINATION_LOG=str(termination_log), HLSFORGE_SCRATCH_DIR=str(scratch))
        args = [_expand(arg, env) for arg in container.get("args") or []]
        command = [_expand(arg, env) for arg in container.get("command") or [WORKER]]
        if command[:1] == [WORKER]:  # the image's entrypoint, run from this checkout
            command = [*worker, *command[1:]]
        argv = [_map_path(arg, mounts) for arg in [*command, *args]]
        fallback = container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
        return cls(argv, args, env, scratch, termination_log, fallback)

    def message(self, exit_code: int, log: PodLog) -> str:
        """The termination message, or the log's tail if allowed and the container failed."""
        message = self.termination_log.read_bytes()[:MESSAGE_LIMIT].decode(errors="replace")
        if not message.strip() and exit_code and self.fallback_to_logs:
            tail = b"".join(log.text().splitlines(keepends=True)[-FALLBACK_LINES:])
            message = tail[-FALLBACK_BYTES:].decode(errors="replace")
        return message


@dataclass
class _JobTrack:
    counted: set[str] = field(default_factory=set)  # pod uids already in succeeded/failed
    created: set[str] = field(default_factory=set)  # pod uids this controller created
    indexes: dict[str, int] = field(default_factory=dict)  # pod uid → completion index
    # Indexed Jobs: (counted, ignored) failures of each index so far, for its next pod
    index_failures: dict[int, tuple[int, int]] = field(default_factory=dict)


class JobRunner:
    """Runs the cluster's Jobs as local processes (or through a `run_pod` hook)."""

    def __init__(
        self,
        cluster: EmulatedCluster,
        *,
        worker_command: list[str] | None = None,
        max_parallel: int = 4,
        env: dict[str, str] | None = None,
        scratch_root: Path | None = None,
        run_pod: RunPod | None = None,
    ) -> None:
        self._cluster = cluster
        self._worker = worker_command or [sys.executable, "-m", "transcode_worker"]
        self._max_parallel = max_parallel
        self._env = dict(env or {})
        self._scratch_root = scratch_root
        self._run_pod = run_pod
        self._own_scratch: Path | None = None
        self._main: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._runs: dict[str, _Run] = {}  # pod uid → run
        self._jobs: dict[str, _JobTrack] = {}  # job uid → track
        self._dirty: set[str] = set()  # uids of Jobs to sync
        self._pending: dict[str, None] = {}  # uids of pods to start, in creation order
        self._next_resync = 0.0

    # Lifecycle

    def start(self) -> Self:
        if self._main is not None:
            raise RuntimeError("the runner is already started")
        if self._scratch_root is None:
            self._own_scratch = self._scratch_root = Path(tempfile.mkdtemp(prefix="hlsforge-pods-"))
        self._scratch_root.mkdir(parents=True, exist_ok=True)

        async def start() -> None:
            self._wake = asyncio.Event()
            self._main = asyncio.create_task(self._loop(), name="hlsforge-dev-jobrunner")

        self._cluster.run(start())
        return self

    def stop(self) -> None:
        """Stop reconciling and kill every running process (their pods stay as they are)."""
        main = self._main
        if main is None:
            return

        async def stop() -> None:
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await main

        try:
            if not main.done():  # done already if the cluster stopped first (it cancels tasks)
                self._cluster.run(stop())
        finally:
            self._main = None
            if self._own_scratch is not None:
                shutil.rmtree(self._own_scratch, ignore_errors=True)
                self._own_scratch = self._scratch_root = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Test controls

    def kill_pod(self, namespace: str, name: str) -> bool:
        """SIGKILL the pod's processes (exit code 137: a failure, retried per backoffLimit).
        False if the pod has no running process."""

        def kill() -> bool:
            run = self._find_run(namespace, name)
            return run is not None and run.signal(signal.SIGKILL)

        return self._cluster.call(kill)

    def evict_pod(self, namespace: str, name: str) -> bool:
        """Evict the pod as a node drain would: a DisruptionTarget condition, then SIGTERM
        (podFailurePolicy `Ignore` rules on DisruptionTarget apply). False if not running."""

        def evict() -> bool:
            run = self._find_run(namespace, name)
            if run is None:
                return False
            pods = self._store.resolve("v1/pods")
            pod = self._store.get(pods, namespace, name)
            disruption = _condition(
                "DisruptionTarget", "EvictionByEvictionAPI", "Eviction API: evicting"
            )
            status = dict(pod.get("status") or {})
            status["conditions"] = [*(status.get("conditions") or []), disruption]
            self._store.set_status(pods, namespace, name, status)
            run.terminate()
            return True

        return self._cluster.call(evict)

    # The loop

    @property
    def _store(self) -> Store:
        return self._cluster.store

    def _notice(self, change: Change) -> None:
        """A store listener: remember what changed, and wake the loop."""
        kind, meta = change.resource.plural, change.obj["metadata"]
        if kind == "jobs":
            self._dirty.add(meta["uid"])
        elif kind == "pods":
            for ref in meta.get("ownerReferences") or []:
                if ref.get("controller"):
                    self._dirty.add(str(ref.get("uid")))
            if change.type != "DELETED" and _startable(change.obj):
                self._pending.setdefault(meta["uid"], None)
        elif kind not in ("secrets", "configmaps"):  # those may unblock pending pods
            return
        if self._wake is not None:
            self._wake.set()

    async def _loop(self) -> None:
        assert self._wake is not None
        self._store.listeners.append(self._notice)
        self._store.runs_pod = lambda pod: pod["metadata"]["uid"] in self._runs
        try:
            while True:
                self._wake.clear()
                try:
                    self._reconcile()
                except Exception:  # a bug here must not stop every Job: log it, go on
                    logger.exception("the emulated Job controller failed; retrying")
                # Not asyncio.wait_for: on 3.11 it can swallow the cancellation stop() sends.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK):
                        await self._wake.wait()
        finally:
            self._store.listeners.remove(self._notice)
            runs = list(self._runs.values())
            for run in runs:
                run.signal(signal.SIGKILL)
                if run.task is not None:
                    run.task.cancel()
            await asyncio.gather(*(r.task for r in runs if r.task), return_exceptions=True)
            self._store.runs_pod = lambda _: False

    def _reconcile(self) -> None:
        """Sync the Jobs that changed (all of them every RESYNC s), then start pending pods."""
        store = self._store
        jobs_type, pods_type = store.resolve("batch/v1/jobs"), store.resolve("v1/pods")
        loop_time = asyncio.get_running_loop().time()
        if loop_time >= self._next_resync:  # deadlines, TTLs, anything a notice missed
            self._next_resync = loop_time + RESYNC
            jobs, _ = store.list(jobs_type)
            live = {job["metadata"]["uid"] for job in jobs}
            self._jobs = {uid: track for uid, track in self._jobs.items() if uid in live}
            self._pending = {p["metadata"]["uid"]: None for p in store.list(pods_type)[0]}
        else:
            jobs = [job for uid in self._dirty if (job := store.find_uid(uid)) is not None]
        self._dirty.clear()
        for job in jobs:
            if job["kind"] != jobs_type.kind:
                continue
            pods = [p for p in store.dependents(job["metadata"]["uid"]) if p["kind"] == "Pod"]
            try:
                self._sync_job(jobs_type, pods_type, job, pods)
            except ApiError as exc:  # gone or changed meanwhile (next round), or a bad template
                if exc.code not in (404, 409):
                    logger.warning("Job %s: %s", job["metadata"]["name"], exc)
        self._sync_kubelet()

    # The Job controller

    def _sync_job(
        self, jobs_type: ResourceType, pods_type: ResourceType, job: Body, pods: list[Body]
    ) -> None:
        store, meta, spec = self._store, job["metadata"], job.get("spec") or {}
        status: Body = dict(job.get("status") or {})
        if _finished(status):
            self._expire(jobs_type, job, status)
            return
        if spec.get("suspend"):
            return
        track = self._jobs.setdefault(meta["uid"], _JobTrack())
        status.setdefault("startTime", now_iso())
        if indexed.is_indexed(spec):
            self._sync_indexed(job, pods, status, track)
            return
        succeeded, failed, failure = _count(track, spec, pods)
        succeeded += int(status.get("succeeded") or 0)
        failed += int(status.get("failed") or 0)
        # With a podFailurePolicy (podReplacementPolicy: Failed), a pod being deleted is
        # replaced only once it has stopped; it counts as `terminating`, not `active`.
        running = [p for p in pods if _phase(p) not in TERMINAL]
        deadline = spec.get("activeDeadlineSeconds")
        elapsed = (parse_time(now_iso()) - parse_time(status["startTime"])).total_seconds()
        if failure is None and deadline is not None and elapsed >= float(deadline):
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        if failure is None and failed > int(spec.get("backoffLimit", 6)) and not succeeded:
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        if failure is not None:
            for pod in running:  # the controller terminates what still runs
                name = pod["metadata"]["name"]
                store.delete(pods_type, meta["namespace"], name, propagation="Background")
            running = []
            status["conditions"] = [
                *(status.get("conditions") or []),
                _condition("FailureTarget", *failure),
                _condition("Failed", *failure),
            ]
        elif succeeded:
            done = ("CompletionsReached", "Reached expected number of succeeded pods")
            status["conditions"] = [
                *(status.get("conditions") or []),
                _condition("SuccessCriteriaMet", *done),
                _condition("Complete", *done),
            ]
            status["completionTime"] = now_iso()
        elif not running:
            pod = store.create(pods_type, meta["namespace"], _pod_for(job))
            track.created.add(pod["metadata"]["uid"])
            running = [pod]
        active = [pod for pod in running if not _deleting(pod)]
        counts = {"active": len(active), "succeeded": succeeded, "failed": failed}
        for key, value in counts.items():  # zero counts are omitted, as the API serializes them
            status.pop(key, None)
            if value:
                status[key] = value
        status["ready"] = sum(1 for pod in active if _is_ready(pod))
        status["terminating"] = len(running) - len(active)
        if status != (job.get("status") or {}):
            store.set_status(jobs_type, meta["namespace"], meta["name"], status)

    def _sync_indexed(self, job: Body, pods: list[Body], status: Body, track: _JobTrack) -> None:
        """`_sync_job` for `completionMode: Indexed` (see `hlsforge_dev.indexed`)."""
        store, meta, spec = self._store, job["metadata"], job.get("spec") or {}
        jobs_type, pods_type = store.resolve("batch/v1/jobs"), store.resolve("v1/pods")
        completions = int(spec["completions"])
        completed = indexed.parse_indexes(status.get("completedIndexes"), completions)
        failed_indexes = indexed.parse_indexes(status.get("failedIndexes"), completions)
        failed, failure = _count_indexed(track, spec, pods, completed, failed_indexes)
        failed += int(status.get("failed") or 0)
        failure = failure or _indexed_failure(spec, status, failed, completed, failed_indexes)
        finished = completed | failed_indexes
        running = [p for p in pods if _phase(p) not in TERMINAL]
        # Pods whose index is done (a duplicate, or a FailIndex) or was never valid.
        surplus = [
            p
            for p in running
            if (i := indexed.completion_index(p)) is None or i in finished or i >= completions
        ]
        for pod in running if failure is not None else surplus:
            if not _deleting(pod):
                name = pod["metadata"]["name"]
                store.delete(pods_type, meta["namespace"], name, propagation="Background")
        if failure is not None:
            running = []
            status["conditions"] = [
                *(status.get("conditions") or []),
                _condition("FailureTarget", *failure),
                _condition("Failed", *failure),
            ]
        elif len(completed) == completions:
            done = ("CompletionsReached", "Reached expected number of succeeded pods")
            status["conditions"] = [
                *(status.get("conditions") or []),
                _condition("SuccessCriteriaMet", *done),
                _condition("Complete", *done),
            ]
            status["completionTime"] = now_iso()
        else:
            # A pod being deleted keeps its index and its slot until it has stopped.
            in_flight = {i for p in running if (i := indexed.completion_index(p)) is not None}
            parallelism = int(spec.get("parallelism", 1))
            wanted = min(parallelism, completions - len(finished)) - len(running)
            for index in indexed.pending_indexes(completions, finished | in_flight, wanted):
                pod = store.create(pods_type, meta["namespace"], self._index_pod(job, index, track))
                track.created.add(pod["metadata"]["uid"])
                track.indexes[pod["metadata"]["uid"]] = index
                running.append(pod)
        active = [pod for pod in running if not _deleting(pod)]
        counts = {"active": len(active), "succeeded": len(completed), "failed": failed}
        for key, value in counts.items():  # zero counts are omitted, as the API serializes them
            status.pop(key, None)
            if value:
                status[key] = value
        if completed:
            status["completedIndexes"] = format_indexes(completed)
        if spec.get("backoffLimitPerIndex") is not None:
            status["failedIndexes"] = format_indexes(failed_indexes)
        status["ready"] = sum(1 for pod in active if _is_ready(pod))
        status["terminating"] = len(running) - len(active)
        if status != (job.get("status") or {}):
            store.set_status(jobs_type, meta["namespace"], meta["name"], status)

    @staticmethod
    def _index_pod(job: Body, index: int, track: _JobTrack) -> Body:
        pod = indexed.with_index(_pod_for(job), job["metadata"]["name"], index)
        if (job.get("spec") or {}).get("backoffLimitPerIndex") is not None:
            pod = indexed.with_failure_counts(pod, *track.index_failures.get(index, (0, 0)))
        return pod

    def _expire(self, jobs_type: ResourceType, job: Body, status: Body) -> None:
        """ttlSecondsAfterFinished: the TTL controller deletes a finished Job (and its pods)."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        finished = status.get("completionTime") or max(
            (c.get("lastTransitionTime", "") for c in status.get("conditions") or []), default=""
        )
        if ttl is None or not finished:
            return
        if (parse_time(now_iso()) - parse_time(finished)).total_seconds() >= float(ttl):
            meta = job["metadata"]
            if not meta.get("deletionTimestamp"):
                self._store.delete(
                    jobs_type, meta["namespace"], meta["name"], propagation="Background"
                )

    # The kubelet

    def _sync_kubelet(self) -> None:
        store = self._store
        for uid, run in list(self._runs.items()):
            pod = store.find_uid(uid)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                run.terminate()
        for uid in list(self._pending):  # in creation order
            pod = store.find_uid(uid)
            if pod is None or not _startable(pod) or uid in self._runs:
                del self._pending[uid]
                continue
            if len(self._runs) >= self._max_parallel:
                if _scheduled(pod):  # said once, not on every round (each write is an event)
                    self._set_pod_status(pod, _unschedulable(self._max_parallel))
                continue
            try:
                env = self._container_env(pod)
            except _ConfigError as exc:
                if _waiting_message(pod) != str(exc):
                    self._set_pod_status(pod, _waiting(pod, "CreateContainerConfigError", str(exc)))
                continue
            del self._pending[uid]
            meta, spec = pod["metadata"], pod.get("spec") or {}
            grace = min(float(spec.get("terminationGracePeriodSeconds", 30)), MAX_GRACE)
            run = self._runs[uid] = _Run(meta["namespace"], meta["name"], grace)
            run.task = asyncio.create_task(self._run_container(pod, env, run))

    def _remove_if_deleted(self, meta: Body) -> None:
        """A pod deleted while it ran is removed once its container has stopped."""
        pods = self._store.resolve("v1/pods")
        with contextlib.suppress(ApiError):  # gone already
            if _deleting(self._store.get(pods, meta["namespace"], meta["name"])):
                self._store.delete(pods, meta["namespace"], meta["name"])

    def _find_run(self, namespace: str, name: str) -> _Run | None:
        runs = [r for r in self._runs.values() if (r.namespace, r.name) == (namespace, name)]
        return runs[0] if runs else None

    def _set_pod_status(self, pod: Body, status: Body) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiError):  # deleted meanwhile
            self._store.set_status(
                self._store.resolve("v1/pods"), meta["namespace"], meta["name"], status
            )

    async def _run_container(self, pod: Body, env: dict[str, str], run: _Run) -> None:
        meta = pod["metadata"]
        assert self._scratch_root is not None
        log = self._store.open_log(meta["namespace"], meta["name"])
        started = now_iso()
        workdir = self._scratch_root / f"{meta['namespace']}.{meta['name']}.{meta['uid'][:8]}"
        try:
            try:
                workdir.mkdir()
                sandbox = _Sandbox.prepare(pod, env, workdir, self._worker)
            except Exception as exc:  # what a container runtime reports as a StartError
                logger.exception("cannot start pod %s", meta["name"])
                self._finish(pod, started, 128, f"cannot start the container: {exc}")
                return
            if self._run_pod is not None:
                exit_code = await self._run_hook(pod, sandbox, run, started, log)
            else:
                exit_code = await self._run_process(pod, sandbox, run=run, started=started, log=log)
            self._finish(pod, started, exit_code, sandbox.message(exit_code, log))
        finally:
            log.close()
            shutil.rmtree(workdir, ignore_errors=True)
            self._runs.pop(meta["uid"], None)
            self._remove_if_deleted(meta)
            if self._wake is not None:
                self._wake.set()

    async def _run_hook(
        self, pod: Body, sandbox: _Sandbox, run: _Run, started: str, log: PodLog
    ) -> int:
        assert self._run_pod is not None
        self._set_pod_status(pod, _running(pod, started))
        meta = pod["metadata"]
        job_name = (meta.get("labels") or {}).get("job-name")
        hook_run = PodRun(
            meta["namespace"],
            meta["name"],
            job_name,
            tuple(sandbox.argv),
            tuple(sandbox.args),
            dict(sandbox.env),
            pod,
        )
        try:
            outcome = self._run_pod(hook_run)
            result = await outcome if inspect.isawaitable(outcome) else outcome
        except asyncio.CancelledError:
            if not run.terminating:  # the runner stops
                raise
            result = PodExit(128 + signal.SIGTERM)  # deleted or evicted
        for line in result.logs:
            log.write(line.encode() + b"\n")
        sandbox.termination_log.write_text(result.message)
        return result.exit_code

    async def _run_process(
        self, pod: Body, sandbox: _Sandbox, *, run: _Run, started: str, log: PodLog
    ) -> int:
        argv = sandbox.argv
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self._env, **sandbox.env},
                cwd=sandbox.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a kill reaches FFmpeg too
            )
        except OSError as exc:  # what a container runtime reports as StartError
            log.write(f"failed to start {argv[0]}: {exc}\n".encode())
            return 128
        run.process = process
        try:
            self._set_pod_status(pod, _running(pod, started))
            assert process.stdout is not None
            while chunk := await process.stdout.read(65536):
                log.write(chunk)
            code = await process.wait()
        finally:
            if process.returncode is None:  # cancelled: the runner stops
                run.signal(signal.SIGKILL)
                await process.wait()
        return code if code >= 0 else 128 - code  # killed by signal N: 128 + N

    def _finish(self, pod: Body, started: str, exit_code: int, message: str) -> None:
        meta = pod["metadata"]
        try:
            current = self._store.get(
                self._store.resolve("v1/pods"), meta["namespace"], meta["name"]
            )
        except ApiError:
            return  # deleted: nobody will read its status
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        terminated = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now_iso(),
            "containerID": f"emulated://{meta['uid']}",
        }
        if message:
            terminated["message"] = message
        status = dict(current.get("status") or {})
        kept = [c for c in status.get("conditions") or [] if c.get("type") == "DisruptionTarget"]
        reason = "PodCompleted" if exit_code == 0 else "PodFailed"
        status.update(
            phase="Succeeded" if exit_code == 0 else "Failed",
            conditions=[
                *kept,
                _condition("Ready", reason, "", status="False"),
                _condition("ContainersReady", reason, "", status="False"),
                _condition("PodScheduled", "", ""),
            ],
            containerStatuses=[
                {
                    **_container_status(container, meta["uid"], ready=False),
                    "state": {"terminated": terminated},
                },
            ],
        )
        self._set_pod_status(current, status)

    # Container environment

    def _container_env(self, pod: Body) -> dict[str, str]:
        """The container's env with its references resolved, in the API's order."""
        namespace = pod["metadata"]["namespace"]
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for ref_key, kind in (("secretRef", "secrets"), ("configMapRef", "configmaps")):
                if ref := source.get(ref_key):
                    data = self._lookup(kind, namespace, ref["name"], ref.get("optional", False))
                    env.update({prefix + key: value for key, value in data.items()})
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            if "secretKeyRef" in value_from or "configMapKeyRef" in value_from:
                kind = "secrets" if "secretKeyRef" in value_from else "configmaps"
                ref = value_from.get("secretKeyRef") or value_from["configMapKeyRef"]
                data = self._lookup(kind, namespace, ref["name"], ref.get("optional", False))
                if ref["key"] in data:
                    env[var["name"]] = data[ref["key"]]
                elif not ref.get("optional"):
                    raise _ConfigError(
                        f"couldn't find key {ref['key']} in {kind[:-1]} {namespace}/{ref['name']}"
                    )
            elif "fieldRef" in value_from:
                env[var["name"]] = _field(pod, value_from["fieldRef"].get("fieldPath", ""))
            else:
                env[var["name"]] = _expand(str(var.get("value", "")), env)
        return env

    def _lookup(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str]:
        try:
            obj = self._store.get(self._store.resolve(f"v1/{kind}"), namespace, name)
        except ApiError:
            if optional:
                return {}
            raise _ConfigError(f'{kind[:-1]} "{name}" not found') from None
        data: dict[str, str] = dict(obj.get("data") or {})
        if kind == "secrets":  # base64 (the store turned any stringData into data on write)
            data = {key: base64.b64decode(value).decode() for key, value in data.items()}
        return data


# Pure helpers: the shapes of Job and Pod objects


def _condition(kind: str, reason: str, message: str, *, status: str = "True") -> Body:
    now = now_iso()
    condition: Body = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _pod_for(job: Body) -> Body:
    """The Pod the Job controller creates for one attempt."""
    meta = job["metadata"]
    template = (job.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    labels = {
        **(template_meta.get("labels") or {}),
        "batch.kubernetes.io/controller-uid": meta["uid"],
        "batch.kubernetes.io/job-name": meta["name"],
        "controller-uid": meta["uid"],
        "job-name": meta["name"],
    }
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "metadata": {
            "generateName": f"{meta['name']}-",
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": dict(template_meta.get("annotations") or {}),
            "ownerReferences": [owner],
        },
        "spec": dict(template.get("spec") or {}),
    }


def _phase(pod: Body) -> str | None:
    phase = (pod.get("status") or {}).get("phase")
    return None if phase is None else str(phase)


def _deleting(obj: Body) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _finished(status: Body) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _count(
    track: _JobTrack, spec: Mapping[str, Any], pods: list[Body]
) -> tuple[int, int, tuple[str, str] | None]:
    """Newly finished pods: (succeeded, failed, a PodFailurePolicy failure or None).

    A pod this controller created that vanished before it finished counts as failed."""
    succeeded = failed = 0
    failure: tuple[str, str] | None = None
    for pod in pods:
        uid, phase = pod["metadata"]["uid"], _phase(pod)
        if phase not in TERMINAL or uid in track.counted:
            continue
        track.counted.add(uid)
        if phase == "Succeeded":
            succeeded += 1
            continue
        action, message = _failure_policy(spec.get("podFailurePolicy") or {}, pod)
        if action == "FailJob":
            failure = failure or ("PodFailurePolicy", message)
        if action != "Ignore":
            failed += 1
    vanished = track.created - {pod["metadata"]["uid"] for pod in pods} - track.counted
    track.counted |= vanished
    return succeeded, failed + len(vanished), failure


def _count_indexed(
    track: _JobTrack,
    spec: Mapping[str, Any],
    pods: list[Body],
    completed: set[int],
    failed_indexes: set[int],
) -> tuple[int, tuple[str, str] | None]:
    """Newly finished pods of an Indexed Job: their indexes go into `completed` or
    `failed_indexes` (updated in place); returns (failed pods, a PodFailurePolicy failure)."""
    completions = int(spec["completions"])
    per_index = spec.get("backoffLimitPerIndex")
    limit = None if per_index is None else int(per_index)
    failed = 0
    failure: tuple[str, str] | None = None

    def fail(index: int, action: str, counted: int, ignored: int) -> None:
        nonlocal failed
        if action == "Ignore":
            track.index_failures[index] = (counted, ignored + 1)
            return
        failed += 1
        track.index_failures[index] = (counted + 1, ignored)
        if indexed.index_failed(action, counted, limit) and index not in completed:
            failed_indexes.add(index)

    for pod in pods:
        uid, phase = pod["metadata"]["uid"], _phase(pod)
        if phase not in TERMINAL or uid in track.counted:
            continue
        track.counted.add(uid)
        index = indexed.completion_index(pod)
        if index is None or index >= completions:
            continue
        if phase == "Succeeded":
            if index not in failed_indexes:
                completed.add(index)
            continue
        action, message = _failure_policy(spec.get("podFailurePolicy") or {}, pod)
        if action == "FailJob":
            failure = failure or ("PodFailurePolicy", message)
        fail(index, action, *indexed.failure_counts(pod))
    vanished = track.created - {pod["metadata"]["uid"] for pod in pods} - track.counted
    track.counted |= vanished
    for uid in vanished:  # deleted before it finished: a counted failure of its index
        index = track.indexes[uid]
        fail(index, "Count", *track.index_failures.get(index, (0, 0)))
    return failed, failure


def _indexed_failure(
    spec: Mapping[str, Any],
    status: Body,
    failed: int,
    completed: set[int],
    failed_indexes: set[int],
) -> tuple[str, str] | None:
    """Why an Indexed Job fails, in the controller's order (after a FailJob rule), or None."""
    if failed > indexed.backoff_limit(spec):
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    deadline = spec.get("activeDeadlineSeconds")
    elapsed = (parse_time(now_iso()) - parse_time(status["startTime"])).total_seconds()
    if deadline is not None and elapsed >= float(deadline):
        return "DeadlineExceeded", "Job was active longer than specified deadline"
    return indexed.failed_indexes_outcome(spec, completed, failed_indexes)


def _failure_policy(policy: Mapping[str, Any], pod: Body) -> tuple[str, str]:
    """The action of the first podFailurePolicy rule the failed pod matches ("Count" if none)."""
    status = pod.get("status") or {}
    name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action", "Count")
        if on_codes := rule.get("onExitCodes"):
            values = set(on_codes.get("values") or [])
            for cs in status.get("containerStatuses") or []:
                code = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
                if code is None or on_codes.get("containerName") not in (None, cs.get("name")):
                    continue
                inside = code in values
                if (on_codes.get("operator") == "In") == inside and (inside or code != 0):
                    return action, (
                        f"Container {cs.get('name')} for pod {name} failed with exit code "
                        f"{code} matching {action} rule at index {index}"
                    )
        for pattern in rule.get("onPodConditions") or []:
            for condition in status.get("conditions") or []:
                if condition.get("type") == pattern.get("type") and condition.get(
                    "status"
                ) == pattern.get("status", "True"):
                    return action, (
                        f"Pod {name} has condition {condition['type']} matching "
                        f"{action} rule at index {index}"
                    )
    return "Count", ""


def _startable(pod: Body) -> bool:
    """Pending, not being deleted, and run to completion (restartPolicy Never/OnFailure)."""
    restart = (pod.get("spec") or {}).get("restartPolicy", "Always")
    return _phase(pod) == "Pending" and not _deleting(pod) and restart != "Always"


def _scheduled(pod: Body) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not any(
        c.get("type") == "PodScheduled" and c.get("status") == "False" for c in conditions
    )


def _waiting_message(pod: Body) -> str | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if waiting := (cs.get("state") or {}).get("waiting"):
            return str(waiting.get("message"))
    return None


def _is_ready(pod: Body) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _container_status(container: Mapping[str, Any], uid: str, *, ready: bool) -> Body:
    return {
        "name": container.get("name", ""),
        "image": container.get("image", ""),
        "imageID": "",
        "containerID": f"emulated://{uid}",
        "ready": ready,
        "started": ready,
        "restartCount": 0,
    }


def _running(pod: Body, started: str) -> Body:
    container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
    return {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": started,
        "qosClass": "BestEffort",
        "conditions": [
            _condition(kind, "", "")
            for kind in (
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
            )
        ],
        "containerStatuses": [
            {
                **_container_status(container, pod["metadata"]["uid"], ready=True),
                "state": {"running": {"startedAt": started}},
            },
        ],
    }


def _waiting(pod: Body, reason: str, message: str) -> Body:
    container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
    status = {
        **_container_status(container, pod["metadata"]["uid"], ready=False),
        "state": {"waiting": {"reason": reason, "message": message}},
    }
    return {
        "phase": "Pending",
        "qosClass": "BestEffort",
        "containerStatuses": [status],
        "conditions": [_condition("PodScheduled", "", "")],
    }


def _unschedulable(max_parallel: int) -> Body:
    message = f"0/1 nodes are available: the emulated node runs at most {max_parallel} pods."
    condition = _condition("PodScheduled", "Unschedulable", message, status="False")
    return {"phase": "Pending", "qosClass": "BestEffort", "conditions": [condition]}


def _field(pod: Body, path: str) -> str:
    """A fieldRef: `metadata.name`, `metadata.labels['x']`, `spec.nodeName`, ..."""
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path):
        return str((pod["metadata"].get(m[1]) or {}).get(m[2], ""))
    node: Any = {**pod, "spec": {"nodeName": "emulated-node", **(pod.get("spec") or {})}}
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return "" if node is None else str(node)


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` references to earlier variables (`$$` escapes)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]),
        text,
    )


def _map_path(value: str, mounts: Mapping[str, Path]) -> str:
    """A path inside the container (or `--opt=PATH`) mapped to the pod's local directory."""
    prefix, eq, rest = value.partition("=")
    if eq and value.startswith("-"):
        return f"{prefix}={_map_path(rest, mounts)}"
    for inside in sorted(mounts, key=len, reverse=True):
        root = inside.rstrip("/")
        if value == inside or value.startswith(root + "/"):
            return str(mounts[inside]) + value[len(root) :]
    return value
