"""At start-up: videos under way whose resource was deleted while no operator ran (no
DELETED event will come for them) become cancelled."""

import asyncio

from transcode_operator.kube import Kube
from transcode_operator.publish import Publisher, VideoStore
from transcode_operator.reconcile import CANCELLED_BY_DELETION, cancelled


async def cancel_vanished(
    namespaces: list[str], *, kube: Kube, videos: VideoStore, publisher: Publisher
) -> int:
    """Cancel the vanished in `namespaces` (empty: all); returns how many."""
    count = 0
    for video in await asyncio.to_thread(videos.unfinished, namespaces):
        if await kube.get_transcode(video.namespace, video.name) is not None:
            continue
        status = video.status
        await publisher.status_changed(video.body, status, cancelled(status, CANCELLED_BY_DELETION))
        count += 1
    return count
