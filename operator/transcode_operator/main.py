"""`hlsforge-operator`: run the Kopf operator with hlsforge's settings, as the one active
replica (the Lease's holder) or as a standby waiting to take over."""

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp.web
import kopf
import prometheus_client

import transcode_operator.handlers  # noqa: F401  (registers the handlers)
from transcode_operator import metrics
from transcode_operator.kube import api_client
from transcode_operator.leadership import Elector, LeaseApi, default_identity
from transcode_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)


def liveness_endpoint(settings: OperatorSettings) -> str:
    """Kopf's liveness URL: the bind address (IPv6 in brackets) and the liveness port."""
    host = f"[{settings.bind_address}]" if ":" in settings.bind_address else settings.bind_address
    return f"http://{host}:{settings.liveness_port}/healthz"


def kopf_options(settings: OperatorSettings) -> dict[str, Any]:
    return {
        "standalone": True,  # one active replica at a time: no Kopf peering
        "clusterwide": not settings.namespaces,
        "namespaces": settings.namespaces,
        "liveness_endpoint": liveness_endpoint(settings),
    }


def main() -> None:
    settings = OperatorSettings()
    kopf.configure(verbose=False)
    if settings.lease.name:
        asyncio.run(run_elected(settings))
    else:
        metrics.ACTIVE.set(1)
        kopf.run(**kopf_options(settings))


async def run_elected(settings: OperatorSettings) -> None:
    """Stand by until this replica holds the Lease, then run Kopf while it is held."""
    # SIGINT and SIGTERM stop a standby, and Kopf until it handles them itself: its start-up
    # handler (the clients) runs before it does.
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    identity = settings.lease.identity or default_identity()
    elector = Elector(LeaseApi(api_client(), settings.lease), settings.lease, identity)
    async with standby_servers(settings):
        if not await _unless_stopped(elector.acquire(), stop):
            return
    metrics.ACTIVE.set(1)
    # Both before Kopf starts, which then leaves them alone when it stops.
    holding, stopping = asyncio.create_task(elector.hold()), asyncio.create_task(stop.wait())

    async def release_lease() -> None:
        holding.cancel()
        await elector.release()

    # Kopf's cleanup releases the Lease once nothing writes any more (handlers.cleanup): Kopf
    # may then wait 5 s more for its own waiters, which the standby need not.
    memo = kopf.Memo(release_lease=release_lease)
    operator = asyncio.create_task(kopf.operator(**kopf_options(settings), memo=memo))
    await asyncio.wait({holding, stopping, operator}, return_when=asyncio.FIRST_COMPLETED)
    if holding.done() and not holding.cancelled():
        # A standby may take over at any moment now: stop at once, with no handler's write
        # after it (the cluster keeps every fact a restarted replica needs).
        logger.critical("lost the lease: exiting so that only one replica is active")
        logging.shutdown()
        os._exit(1)
    if stopping.done():
        operator.cancel()
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await operator
    finally:  # also after a crash: nothing of Kopf's runs any more
        stopping.cancel()
        await release_lease()  # if Kopf's cleanup did not (a stop during its start-up)


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Whether `work` finished before `stop` was set (it is cancelled if not)."""
    working, stopping = asyncio.create_task(work), asyncio.create_task(stop.wait())
    await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in (working, stopping):
        task.cancel()
    return working.done() and not working.cancelled()


@contextlib.asynccontextmanager
async def standby_servers(settings: OperatorSettings) -> AsyncIterator[None]:
    """`/healthz` and `/metrics` (`hlsforge_operator_active 0`) while standing by, on the
    ports Kopf and the metrics server take once active."""

    async def healthy(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"standby": True})

    async def metrics_text(_: aiohttp.web.Request) -> aiohttp.web.Response:
        response = aiohttp.web.Response(body=prometheus_client.generate_latest())
        response.headers["Content-Type"] = prometheus_client.CONTENT_TYPE_LATEST
        return response

    app = aiohttp.web.Application()
    app.router.add_get("/healthz", healthy)
    app.router.add_get("/metrics", metrics_text)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in (settings.liveness_port, settings.metrics_port):
        site = aiohttp.web.TCPSite(runner, settings.bind_address, port, reuse_address=True)
        await site.start()
    try:
        yield
    finally:
        await runner.cleanup()
