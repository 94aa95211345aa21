"""`/api/v1/videos`: the signed-in user's videos, their uploads and their playback."""

from fastapi import APIRouter, Request, Response, status

from transcode_api import control, playback, uploads
from transcode_api.deps import (
    Context,
    CurrentUser,
    PageNumber,
    PageSize,
    VideoId,
    playlist_url,
)
from transcode_api.errors import NotFoundError
from transcode_api.models import (
    ERROR_RESPONSES,
    CompleteMultipartRequest,
    Page,
    PartUrls,
    PartUrlsRequest,
    Playback,
    UploadedParts,
    VideoCreate,
    VideoCreated,
    VideoPublic,
    VideoUpdate,
)
from transcode_api.routing import StrictJsonRoute
from videotranscode import VideoPhase

router = APIRouter(prefix="/api/v1/videos", tags=["videos"], responses=ERROR_RESPONSES,
                   route_class=StrictJsonRoute)  # fmt: skip


@router.post("", status_code=status.HTTP_201_CREATED)
def create_video(body: VideoCreate, user: CurrentUser, ctx: Context) -> VideoCreated:
    """Register a video and get where to upload its file."""
    return uploads.create_video(ctx, owner=user["_id"], body=body)


@router.get("")
def list_videos(
    user: CurrentUser, ctx: Context, page: PageNumber = 1, page_size: PageSize = 20,
    phase: VideoPhase | None = None,
) -> Page[VideoPublic]:  # fmt: skip
    """My videos, newest first."""
    items, total = ctx.repo.list_videos(
        owner=user["_id"], phase=phase, page=page, page_size=page_size
    )
    return Page(items=[VideoPublic.from_document(v) for v in items], total=total, page=page,
                page_size=page_size)  # fmt: skip


@router.get("/{video_id}")
def get_video(video_id: VideoId, user: CurrentUser, ctx: Context) -> VideoPublic:
    """One of my videos."""
    return VideoPublic.from_document(uploads.owned_video(ctx, owner=user["_id"], video_id=video_id))


@router.patch("/{video_id}")
def update_video(
    video_id: VideoId, body: VideoUpdate, user: CurrentUser, ctx: Context
) -> VideoPublic:
    """Change the title, description or visibility of one of my videos."""
    fields = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    updated = ctx.repo.update_video(owner=user["_id"], video_id=video_id, fields=fields)
    if updated is None:
        raise NotFoundError("video not found")
    return VideoPublic.from_document(updated)


@router.delete("/{video_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_video(video_id: VideoId, user: CurrentUser, ctx: Context) -> None:
    """Delete a video: its transcode, its files and its record. (To stop but keep it: cancel.)"""
    uploads.delete_video(ctx, owner=user["_id"], video_id=video_id)


@router.post("/{video_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
def cancel_transcode(video_id: VideoId, user: CurrentUser, ctx: Context) -> VideoPublic:
    """Stop the transcode; the video and its source stay, so it can be retried."""
    return control.cancel(ctx, owner=user["_id"], video_id=video_id)


@router.post("/{video_id}/retry", status_code=status.HTTP_202_ACCEPTED)
def retry_transcode(video_id: VideoId, user: CurrentUser, ctx: Context) -> VideoPublic:
    """Run again what failed or was cancelled; finished renditions are kept."""
    return control.retry(ctx, owner=user["_id"], video_id=video_id)


@router.post("/{video_id}/complete", status_code=status.HTTP_202_ACCEPTED)
def complete_upload(video_id: VideoId, user: CurrentUser, ctx: Context) -> VideoPublic:
    """The file is uploaded: check it and start the transcode."""
    return uploads.complete_upload(ctx, owner=user["_id"], video_id=video_id)


@router.post("/{video_id}/upload/parts")
def part_urls(
    video_id: VideoId, body: PartUrlsRequest, user: CurrentUser, ctx: Context
) -> PartUrls:
    """Presigned URLs to PUT the given parts of a multipart upload."""
    return uploads.part_urls(ctx, owner=user["_id"], video_id=video_id, numbers=body.part_numbers)


@router.get("/{video_id}/upload/parts")
def uploaded_parts(video_id: VideoId, user: CurrentUser, ctx: Context) -> UploadedParts:
    """The parts already uploaded, to resume an interrupted upload."""
    return uploads.uploaded_parts(ctx, owner=user["_id"], video_id=video_id)


@router.post("/{video_id}/upload/complete", status_code=status.HTTP_204_NO_CONTENT)
def complete_multipart(
    video_id: VideoId, body: CompleteMultipartRequest, user: CurrentUser, ctx: Context
) -> None:
    """Assemble the uploaded parts into the file."""
    uploads.complete_multipart(ctx, owner=user["_id"], video_id=video_id, parts=body.parts)


@router.delete("/{video_id}/upload", status_code=status.HTTP_204_NO_CONTENT)
def abort_upload(video_id: VideoId, user: CurrentUser, ctx: Context) -> None:
    """Abort a multipart upload."""
    uploads.abort_upload(ctx, owner=user["_id"], video_id=video_id)


@router.get("/{video_id}/playback")
def video_playback(
    video_id: VideoId, user: CurrentUser, ctx: Context, request: Request, response: Response
) -> Playback:
    """Where to play one of my finished videos, and its poster."""
    video = uploads.owned_video(ctx, owner=user["_id"], video_id=video_id)
    response.headers["Cache-Control"] = "private, no-store"
    return playback.playback_urls(ctx, video, playlist_url(request))
