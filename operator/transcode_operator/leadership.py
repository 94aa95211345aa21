"""One active operator among its replicas: the holder of a `coordination.k8s.io` Lease.

Leader election as client-go does it (k8s.io/client-go/tools/leaderelection):

- A candidate takes the Lease when it has no holder, or when its record has not changed for
  the Lease's duration, timed by the candidate's own clock from when it saw the record last
  change (so the replicas' clocks need not agree).
- Every write replaces the Lease at the resourceVersion that was read: of two candidates
  writing at once, one gets 409 Conflict and stays a standby.
- The holder renews every `renew_seconds`. One that has not renewed for
  `renew_deadline_seconds` (less than the duration) has lost the Lease and must stop before a
  standby can take over.

Kopf's own peering was not used: peers of the same priority all pause, and a standby waits
for the whole peering lifetime (60 s by default) before it resumes.
"""

import asyncio
import datetime
import functools
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from transcode_operator.kube import CONFLICT, NOT_FOUND, describe_error
from transcode_operator.settings import LeaseSettings

logger = logging.getLogger(__name__)
LEASE_GROUP, LEASE_VERSION = "coordination.k8s.io", "v1"


def default_identity() -> str:
    """This host's name and a random part: a restarted process is never taken for its
    predecessor, which may still be named as the holder."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def micro_time(moment: datetime.datetime) -> str:
    """A Lease's `MicroTime`: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Read:
    """A Lease's spec as read, and the resourceVersion a write must name."""

    spec: dict[str, Any]
    resource_version: str

    @property
    def holder(self) -> str:
        return str(self.spec.get("holderIdentity") or "")


def claimed(current: dict[str, Any] | None, identity: str, duration_seconds: int,
            now: datetime.datetime) -> dict[str, Any]:  # fmt: skip
    """The spec that makes `identity` the holder as of `now`: a renewal keeps the acquire
    time and the transition count, a takeover sets the one and adds to the other."""
    current = current or {}
    renewing = current.get("holderIdentity") == identity
    transitions = int(current.get("leaseTransitions") or 0)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": duration_seconds,
        "acquireTime": current.get("acquireTime") if renewing else micro_time(now),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions if renewing or not current else transitions + 1,
    }


def released(current: dict[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """The spec a holder leaves on a clean stop: no holder, so a standby need not wait."""
    return {**current, "holderIdentity": None, "leaseDurationSeconds": 1,
            "renewTime": micro_time(now)}  # fmt: skip


class LeaseApi:
    """Reads and writes one Lease as plain dicts (the `kubernetes` client, in threads). Not
    through the client's Lease model: it writes times with `isoformat()`, which leaves out
    the microseconds a MicroTime must have whenever they are zero (the API server's 400)."""

    def __init__(self, client: kubernetes.client.ApiClient, settings: LeaseSettings) -> None:
        self._api: Any = kubernetes.client.CustomObjectsApi(client)  # plain dicts in and out
        self._where: tuple[str, ...] = (LEASE_GROUP, LEASE_VERSION, settings.namespace, "leases")
        self._name = settings.name
        self._timeout = settings.renew_deadline_seconds / 2  # a hung call must not outlast it

    async def read(self) -> Read | None:
        try:
            call = functools.partial(self._api.get_namespaced_custom_object, *self._where)
            body = await asyncio.to_thread(call, self._name, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise
        return Read(body.get("spec") or {}, body["metadata"]["resourceVersion"])

    async def write(self, spec: dict[str, Any], resource_version: str | None) -> bool:
        """Create (no resourceVersion) or replace the Lease; False if another write won."""
        metadata = {"name": self._name, "namespace": self._where[2]}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        body = {"apiVersion": f"{LEASE_GROUP}/{LEASE_VERSION}", "kind": "Lease",
                "metadata": metadata, "spec": spec}  # fmt: skip
        if resource_version is None:
            call = functools.partial(self._api.create_namespaced_custom_object, *self._where)
        else:
            call = functools.partial(
                self._api.replace_namespaced_custom_object, *self._where, self._name
            )
        try:
            await asyncio.to_thread(call, body, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == CONFLICT:
                return False
            raise
        return True


class Elector:
    """Takes, keeps and gives back the Lease for `identity`."""

    def __init__(self, api: LeaseApi, settings: LeaseSettings, identity: str) -> None:
        self._api, self._settings, self.identity = api, settings, identity
        self._seen: tuple[Read, float] | None = None  # the record last seen, and when it changed
        self._standby_for: str | None = None

    async def acquire(self) -> None:
        """Until this replica holds the Lease."""
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self._settings.retry_seconds)
        logger.info("holding lease %s as %s: this replica is active",
                    self._settings.name, self.identity)  # fmt: skip

    async def hold(self) -> None:
        """Renews the Lease; returns once it is lost: taken, or not renewed within the renew
        deadline, counted from the start of the last renewal that went through."""
        renewed = time.monotonic()
        while True:
            deadline = renewed + self._settings.renew_deadline_seconds
            await asyncio.sleep(min(self._settings.renew_seconds, deadline - time.monotonic()))
            attempt = time.monotonic()
            try:
                async with asyncio.timeout(deadline - attempt):
                    if await self._try_acquire_or_renew():
                        renewed = attempt
                        continue
            except TimeoutError:
                pass
            if self._seen is not None and self._seen[0].holder not in ("", self.identity):
                logger.error("lease %s was taken by %s", self._settings.name, self._seen[0].holder)
                return
            if time.monotonic() >= deadline:
                logger.error("lease %s not renewed for %.1f s", self._settings.name,
                             time.monotonic() - renewed)  # fmt: skip
                return

    async def release(self) -> None:
        """On a clean stop: give the Lease up, so a standby takes over at once."""
        try:
            current = await self._api.read()
            if current is not None and current.holder == self.identity:
                now = datetime.datetime.now(datetime.UTC)
                await self._api.write(released(current.spec, now), current.resource_version)
        except (ApiException, HTTPError, OSError) as exc:
            logger.warning("lease %s not released (it expires instead): %s",
                           self._settings.name, describe_error(exc))  # fmt: skip

    async def _try_acquire_or_renew(self) -> bool:
        try:
            current = await self._api.read()
            if current is not None and not self._may_write(current):
                return False
            now = datetime.datetime.now(datetime.UTC)
            duration = self._settings.duration_seconds
            if current is None:
                return await self._api.write(claimed(None, self.identity, duration, now), None)
            spec = claimed(current.spec, self.identity, duration, now)
            return await self._api.write(spec, current.resource_version)
        except (ApiException, HTTPError, OSError) as exc:
            logger.warning("lease %s: %s", self._settings.name, describe_error(exc))
            return False

    def _may_write(self, current: Read) -> bool:
        """Whether this replica may write `current` now: it holds it, nobody does, or its
        holder has not renewed for a whole duration as this replica has timed it."""
        now = time.monotonic()
        if self._seen is None or self._seen[0] != current:
            self._seen = (current, now)
        if current.holder in ("", self.identity):
            return True
        duration = int(current.spec.get("leaseDurationSeconds") or self._settings.duration_seconds)
        if now - self._seen[1] < duration:
            if self._standby_for != current.holder:
                logger.info("standing by: lease %s is held by %s",
                            self._settings.name, current.holder)  # fmt: skip
                self._standby_for = current.holder
            return False
        return True
