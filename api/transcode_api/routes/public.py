"""Routes without sign-in: the public catalogue and the playlists of a playback link."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from transcode_api import playback
from transcode_api.deps import Context, PageNumber, PageSize, VideoId, playlist_url
from transcode_api.errors import NotFoundError
from transcode_api.models import ERROR_RESPONSES, Page, Playback, VideoPublic
from videotranscode import HLS_PLAYLIST_TYPE, VideoRecord

router = APIRouter(prefix="/api/v1", tags=["public"], responses=ERROR_RESPONSES)

PLAYLIST_MAX_AGE = 60  # well inside the signed URLs' lifetime
# A playlist that still grows (EVENT, no EXT-X-ENDLIST yet): every reload must reach us.
GROWING_CACHE_CONTROL = "private, no-cache"


@router.get("/public/videos")
def list_public_videos(
    ctx: Context, page: PageNumber = 1, page_size: PageSize = 20,
    q: Annotated[str | None, Query(max_length=100, description="words in the title")] = None,
) -> Page[VideoPublic]:  # fmt: skip
    """Published public videos, newest first."""
    items, total = ctx.repo.list_public(search=q, page=page, page_size=page_size)
    return Page(items=[VideoPublic.from_record(v) for v in items], total=total, page=page,
                page_size=page_size)  # fmt: skip


def _viewable(ctx: Context, video_id: str) -> VideoRecord:
    video = ctx.repo.viewable_video(video_id)
    if video is None:
        raise NotFoundError("video not found")
    return video


@router.get("/public/videos/{video_id}")
def get_public_video(video_id: VideoId, ctx: Context) -> VideoPublic:
    """A published public or unlisted video."""
    return VideoPublic.from_record(_viewable(ctx, video_id))


@router.get("/public/videos/{video_id}/playback")
def public_playback(video_id: VideoId, ctx: Context, request: Request) -> Playback:
    """Where to play a published public or unlisted video."""
    return playback.playback_urls(ctx, _viewable(ctx, video_id), playlist_url(request))


@router.get("/playback/{token}/{path:path}", name="playlist", response_class=Response,
            responses={200: {"content": {HLS_PLAYLIST_TYPE: {}}}})  # fmt: skip
def get_playlist(token: str, path: str, ctx: Context) -> Response:
    """A playlist of a playback link, its media URIs signed; one that still grows is not
    cached."""
    served = playback.playlist(ctx, token=token, path=path)
    cache = f"private, max-age={PLAYLIST_MAX_AGE}" if served.final else GROWING_CACHE_CONTROL
    return Response(served.text, media_type=HLS_PLAYLIST_TYPE, headers={"Cache-Control": cache})
