"""`/healthz` (the process answers) and `/readyz` (its dependencies answer too)."""

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from transcode_api.context import AppContext
from transcode_api.deps import Context

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "ok"}


# Live events only: without it HTTP still serves, so the replica stays in the Service.
DEGRADING = frozenset({"redis"})


def _ping_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _checks(ctx: AppContext) -> dict[str, Any]:
    checks = {
        "mongodb": ctx.repo.ping,
        "s3": lambda: ctx.storage.check_bucket(ctx.settings.upload_bucket),
        "kubernetes": ctx.kube.check,
    }
    if ctx.settings.redis_url is not None:
        url = ctx.settings.redis_url.get_secret_value()
        checks["redis"] = lambda: _ping_redis(url)
    return checks


@router.get("/readyz")
def readyz(ctx: Context) -> JSONResponse:
    """Readiness: MongoDB, S3 and the Kubernetes API answer, and Redis when configured
    (checked in parallel). Redis alone down is `degraded`, still ready: HTTP serves, only
    live events stop."""
    results: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(check) for name, check in _checks(ctx).items()}
        for name, future in futures.items():
            try:
                future.result()
            except Exception as exc:  # any failure means not ready
                logger.warning("readiness: %s unreachable: %s", name, exc)
                results[name] = "unavailable"
            else:
                results[name] = "ok"
    failed = {name for name, value in results.items() if value != "ok"}
    status = "ok" if not failed else "degraded" if failed <= DEGRADING else "unavailable"
    return JSONResponse({"status": status, "checks": results},
                        status_code=503 if status == "unavailable" else 200)  # fmt: skip
