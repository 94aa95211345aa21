"""The ASGI app (FastAPI + Socket.IO on one port) and `hlsforge-api`.

`uvicorn transcode_api.main:app` works too: `app` is built on first access, from the
environment, so importing this module never needs settings.
"""

import argparse
import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import socketio
import uvicorn
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from kubernetes.client.exceptions import ApiException
from pymongo import MongoClient
from pymongo.errors import PyMongoError
from urllib3.exceptions import HTTPError
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from transcode_api import logs, realtime
from transcode_api.body_limit import BodyLimitMiddleware
from transcode_api.context import AppContext
from transcode_api.errors import ApiError
from transcode_api.kube import Kube, api_client
from transcode_api.ratelimits import RateLimits
from transcode_api.realtime import create_server
from transcode_api.repository import Repository
from transcode_api.routes import auth, health, public, videos
from transcode_api.security import TokenIssuer
from transcode_api.settings import ApiSettings
from transcode_api.storage import Storage
from transcode_api.validation import validation_error
from transcode_api.web import mount_web, storage_origins

logger = logging.getLogger(__name__)

DEPENDENCY_ERRORS = (PyMongoError, ClientError, BotoCoreError, ApiException, HTTPError)
INDEX_ATTEMPTS = 30  # MongoDB may start after the API (a fresh `helm install`)
# Thousands of Socket.IO sessions are long-lived objects that the default thresholds make the
# collector walk again and again: fewer collections halved the fan-out's p99 in bench/api.py.
GC_THRESHOLDS = (50_000, 50, 1000)


def _connect(settings: ApiSettings, tokens: TokenIssuer) -> AppContext:
    mongo: MongoClient[dict[str, Any]] = MongoClient(
        settings.mongodb_uri.get_secret_value(), serverSelectionTimeoutMS=3000, tz_aware=True
    )
    repo = Repository(mongo, settings.mongodb_database)
    return AppContext(
        settings=settings,
        repo=repo,
        storage=Storage(settings),
        kube=Kube(api_client(settings.kubeconfig), settings.namespace),
        tokens=tokens,
        limits=RateLimits(repo.db["rate_limits"]),
    )


def _ensure_indexes(context: AppContext) -> None:
    for attempt in range(1, INDEX_ATTEMPTS + 1):
        try:
            context.repo.ensure_indexes()
            context.limits.ensure_indexes()
        except PyMongoError as exc:
            if attempt == INDEX_ATTEMPTS:
                raise
            logger.warning("MongoDB not reachable yet (%s); retrying", exc)
            time.sleep(2)
        else:
            return


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=exc.headers)


async def _dependency_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("dependency failed: %s: %s", type(exc).__name__, exc)
    return JSONResponse({"detail": "a backing service is unavailable; try again shortly"},
                        status_code=503)  # fmt: skip


def create_app(settings: ApiSettings | None = None) -> ProxyHeadersMiddleware:
    settings = settings or ApiSettings()
    tokens = TokenIssuer.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await asyncio.to_thread(_connect, settings, tokens)
        await asyncio.to_thread(_ensure_indexes, context)
        app.state.context = context
        yield
        await realtime.stop(sio)
        context.repo.client.close()
        context.kube.close()

    app = FastAPI(
        title="hlsforge",
        version="0.1.0",
        description="Upload videos, follow their transcodes, play them as HLS.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)  # inside CORS and logs
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
    )
    app.add_middleware(logs.RequestLogMiddleware)
    logs.redact_uvicorn_access_log()
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for error in DEPENDENCY_ERRORS:
        app.add_exception_handler(error, _dependency_error)
    for module in (auth, videos, public, health):
        app.include_router(module.router)
    mount_web(app, storage=storage_origins(settings))  # `/` and its files, after the API's

    async def user_exists(user_id: str) -> bool:
        context: AppContext = app.state.context
        return await asyncio.to_thread(context.repo.user_by_id, user_id) is not None

    async def owns_video(user_id: str, video_id: str) -> bool:
        context: AppContext = app.state.context
        video = await asyncio.to_thread(context.repo.video, owner=user_id, video_id=video_id)
        return video is not None

    sio = create_server(
        tokens=tokens,
        service_token=settings.service_token.get_secret_value() if settings.service_token else None,
        user_exists=user_exists,
        owns_video=owns_video,
        cors_origins=settings.cors_origins,
        redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
    )
    # The client's address (rate limits) and scheme (playback URLs), from X-Forwarded-For and
    # X-Forwarded-Proto only when the peer is a trusted proxy. uvicorn's own copy of this
    # middleware trusts 127.0.0.1 by default, so `hlsforge-api` turns that one off.
    return ProxyHeadersMiddleware(socketio.ASGIApp(sio, other_asgi_app=app),
                                  trusted_hosts=settings.trusted_proxies)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "app":  # `uvicorn transcode_api.main:app`
        return create_app()
    raise AttributeError(name)


def main() -> None:
    parser = argparse.ArgumentParser(prog="hlsforge-api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    settings = ApiSettings()
    logs.configure(settings.log_level)
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, access_log=False,
        log_config=None, proxy_headers=False, timeout_graceful_shutdown=5,
    )  # fmt: skip
