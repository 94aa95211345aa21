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
        where = video.transcode
        if where is None or await kube.get_transcode(where.namespace, where.name) is not None:
            continue  # (every operator write sets `transcode`)
        body = {"metadata": {"namespace": where.namespace, "name": where.name},
                "spec": {"videoId": video.id, "owner": video.owner}}  # fmt: skip
        status = video.status()
        await publisher.status_changed(body, status, cancelled(status, CANCELLED_BY_DELETION))
        count += 1
    return count
