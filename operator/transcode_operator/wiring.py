"""Start-up and shut-down: Kopf's settings, the clients, the engine and the background loops."""

import asyncio
import logging
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

import boto3
import kopf
import prometheus_client
from botocore.config import Config
from kubernetes.client.exceptions import ApiException
from pymongo.errors import PyMongoError

from transcode_operator.engine import Engine
from transcode_operator.kube import Kube, api_client
from transcode_operator.publish import Publisher, Realtime, VideoStore
from transcode_operator.settings import OperatorSettings
from transcode_operator.vanished import cancel_vanished

logger = logging.getLogger(__name__)
FINALIZER = "hlsforge.dev/cleanup"
MONGO_RETRY_SECONDS = 10


def configure(settings: kopf.OperatorSettings, config: OperatorSettings) -> None:
    """Kopf's own settings for this operator."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="hlsforge.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="hlsforge.dev")
    settings.posting.level = logging.WARNING  # phase changes are posted as Events explicitly
    if config.namespaces:
        # Fixed namespaces need no scanning, and a namespaced Role cannot list namespaces or CRDs.
        settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10


@dataclass
class Running:
    """What start-up started, for shut-down to stop."""

    engine: Engine
    metrics_server: WSGIServer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.engine.stop()
        self.metrics_server.shutdown()
        self.metrics_server.server_close()
        await self.engine.publisher.close()


def start(config: OperatorSettings) -> Running:
    """The engine with its clients, the publishers' loops and the metrics server. The clients
    come first: should one fail, nothing has been started."""
    s3 = boto3.client(
        "s3", config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"})
    )
    kube = Kube(api_client())
    publisher = Publisher()
    if config.mongodb_uri is not None:
        uri = config.mongodb_uri.get_secret_value()
        publisher.videos = VideoStore(uri, config.mongodb_database)
    if config.api_url and config.service_token is not None:
        publisher.realtime = Realtime(config.api_url, config.service_token.get_secret_value())
    engine = Engine(settings=config, kube=kube, s3=s3, publisher=publisher)
    metrics_server = prometheus_client.start_http_server(
        config.metrics_port, addr=config.bind_address
    )[0]
    tasks = []
    if publisher.videos is not None:
        tasks.append(asyncio.create_task(_retry_mongo_writes(publisher.videos)))
        tasks.append(asyncio.create_task(
            _cancel_vanished(config.namespaces, kube, publisher.videos, publisher)
        ))  # fmt: skip
    if publisher.realtime is not None:
        tasks.append(asyncio.create_task(publisher.realtime.connect_forever()))
    return Running(engine, metrics_server, tasks)


async def _retry_mongo_writes(videos: VideoStore) -> None:
    while True:
        await asyncio.sleep(MONGO_RETRY_SECONDS)
        await videos.retry_pending()


async def _cancel_vanished(
    namespaces: list[str], kube: Kube, videos: VideoStore, publisher: Publisher
) -> None:
    while True:
        try:
            count = await cancel_vanished(namespaces, kube=kube, videos=videos, publisher=publisher)
        except (PyMongoError, ApiException) as exc:
            logger.warning("looking for videos deleted meanwhile failed, will retry: %s", exc)
            await asyncio.sleep(MONGO_RETRY_SECONDS)
        else:
            if count:
                logger.info("%d videos whose resource was deleted meanwhile are cancelled", count)
            return
