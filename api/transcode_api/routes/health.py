"""`/healthz` (the process answers) and `/readyz` (its dependencies answer too)."""

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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


def _checks(ctx: AppContext) -> dict[str, Any]:
    return {
        "mongodb": ctx.repo.ping,
        "s3": lambda: ctx.storage.check_bucket(ctx.settings.upload_bucket),
        "kubernetes": ctx.kube.check,
    }


@router.get("/readyz")
def readyz(ctx: Context) -> JSONResponse:
    """Readiness: MongoDB, S3 and the Kubernetes API answer (checked in parallel)."""
    results: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(check) for name, check in _checks(ctx).items()}
        for name, future in futures.items():
            try:
                future.result()
            except Exception as exc:  # any failure means not ready
                logger.warning("readiness: %s unreachable: %s", name, exc)
                results[name] = "unavailable"
            else:
                results[name] = "ok"
    ready = all(value == "ok" for value in results.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": results},
                        status_code=200 if ready else 503)  # fmt: skip
