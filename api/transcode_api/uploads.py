"""A video's life before and after its transcode: upload tickets, the upload check, the
`VideoTranscode` it starts, and deletion. Every function takes the owner and scopes by it."""

import logging
import math
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from transcode_api.context import AppContext
from transcode_api.errors import (
    ConflictError,
    NotFoundError,
    RejectedError,
    TooManyError,
    UnavailableError,
)
from transcode_api.media import HEAD_BYTES, sniff_container
from transcode_api.models import (
    MAX_PARTS,
    MultipartUpload,
    PartUrl,
    PartUrls,
    PostUpload,
    UploadedPart,
    UploadedParts,
    VideoCreate,
    VideoCreated,
    VideoPublic,
)
from transcode_api.repository import new_id, now
from transcode_api.storage import ObjectMissingError
from transcode_api.transcodes import (
    build_video_transcode,
    output_prefix,
    resource_name,
    upload_key,
)
from videotranscode import (
    MultipartUploadState,
    OutputSpec,
    PostUploadState,
    SourceSpec,
    StoredObject,
    TranscodeRef,
    VideoPhase,
    VideoRecord,
)

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
KUBE_ERRORS = (ApiException, HTTPError, OSError)
S3_ERRORS = (ClientError, BotoCoreError)
NOT_MEDIA = "The uploaded file is not a video: its first bytes match no known container format."


def part_size_for(size: int, preferred: int) -> int:
    """The preferred part size, grown (in whole MiB) when S3's 10 000-part limit needs it."""
    return max(preferred, math.ceil(size / MAX_PARTS / MiB) * MiB)


def owned_video(ctx: AppContext, *, owner: str, video_id: str) -> VideoRecord:
    video = ctx.repo.video(owner=owner, video_id=video_id)
    if video is None:
        raise NotFoundError("video not found")
    return video


def create_video(ctx: AppContext, *, owner: str, body: VideoCreate) -> VideoCreated:
    """The `videos` document and where to upload the file."""
    settings = ctx.settings
    if body.content_type not in settings.allowed_content_types:
        raise RejectedError(
            "this content type is not accepted; use one of "
            + ", ".join(settings.allowed_content_types)
        )
    if body.size > settings.max_upload_bytes:
        limit = settings.max_upload_bytes
        raise RejectedError(f"the file is larger than the limit of {limit} bytes")
    too_many = TooManyError(
        f"{settings.max_pending_uploads} videos are already awaiting upload; "
        "finish or delete them first"
    )
    if ctx.repo.count_awaiting_upload(owner) >= settings.max_pending_uploads:
        raise too_many  # before S3 is asked for anything; the insert below decides
    video_id = new_id()
    key = upload_key(owner=owner, video_id=video_id, filename=body.filename)
    bucket = settings.upload_bucket
    upload: PostUpload | MultipartUpload
    upload_state: PostUploadState | MultipartUploadState
    if body.size <= settings.multipart_threshold_bytes:
        post = ctx.storage.presigned_post(
            bucket=bucket, key=key, content_type=body.content_type, size=body.size,
            seconds=settings.upload_url_seconds,
        )  # fmt: skip
        upload = PostUpload(url=post["url"], fields=post["fields"],
                            expires_at=ctx.storage.expiry(settings.upload_url_seconds))  # fmt: skip
        upload_state = PostUploadState()
    else:
        part_size = part_size_for(body.size, settings.multipart_part_bytes)
        upload_id = ctx.storage.start_multipart(
            bucket=bucket, key=key, content_type=body.content_type
        )
        upload = MultipartUpload(part_size=part_size, part_count=math.ceil(body.size / part_size))
        upload_state = MultipartUploadState(upload_id=upload_id, part_size=part_size)
    created = now()
    video = ctx.repo.create_awaiting_upload(VideoRecord(
        id=video_id, owner=owner, title=body.title, description=body.description,
        visibility=body.visibility, filename=body.filename, content_type=body.content_type,
        size=body.size, source=StoredObject(bucket=bucket, key=key), upload=upload_state,
        phase=VideoPhase.AWAITING_UPLOAD, created_at=created, updated_at=created,
    ), limit=settings.max_pending_uploads)  # fmt: skip
    if video is None:  # parallel requests took the last places
        if isinstance(upload_state, MultipartUploadState):
            ctx.storage.abort_multipart(bucket=bucket, key=key, upload_id=upload_state.upload_id)
        raise too_many
    return VideoCreated(video=VideoPublic.from_record(video), upload=upload)


def _multipart(video: VideoRecord) -> MultipartUploadState:
    upload = video.upload
    if video.phase != VideoPhase.AWAITING_UPLOAD or not isinstance(upload, MultipartUploadState):
        raise ConflictError("this video has no multipart upload in progress")
    return upload


def _assembled(ctx: AppContext, video: VideoRecord) -> bool:
    """Whether S3 holds the whole file. Once it does, say so in the document: assembling may
    have succeeded while noting it failed, and a resuming client must then move on."""
    source = video.source
    try:
        head = ctx.storage.head(bucket=source.bucket, key=source.key)
    except ObjectMissingError:
        return False
    if head["ContentLength"] != video.size:
        return False
    ctx.repo.mark_assembled(owner=video.owner, video_id=video.id)
    return True


def part_urls(ctx: AppContext, *, owner: str, video_id: str, numbers: list[int]) -> PartUrls:
    video = owned_video(ctx, owner=owner, video_id=video_id)
    upload = _multipart(video)
    if upload.completed:
        raise ConflictError("the parts are already assembled; complete the video")
    part_count = math.ceil(video.size / upload.part_size)
    if max(numbers) > part_count:
        raise RejectedError(f"this upload has {part_count} parts")
    seconds = ctx.settings.upload_url_seconds
    urls = [
        PartUrl(part_number=number, url=ctx.storage.part_url(
            bucket=video.source.bucket, key=video.source.key,
            upload_id=upload.upload_id, part_number=number, seconds=seconds,
        ))
        for number in sorted(set(numbers))
    ]  # fmt: skip
    return PartUrls(parts=urls, expires_at=ctx.storage.expiry(seconds))


def uploaded_parts(ctx: AppContext, *, owner: str, video_id: str) -> UploadedParts:
    """The parts S3 already holds, so a resuming client uploads only the others; or
    `completed` when the file is already assembled."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    upload = _multipart(video)
    if upload.completed:
        return UploadedParts(parts=[], completed=True)
    source = video.source
    try:
        parts = ctx.storage.uploaded_parts(
            bucket=source.bucket, key=source.key, upload_id=upload.upload_id
        )
    except ObjectMissingError as exc:
        if _assembled(ctx, video):
            return UploadedParts(parts=[], completed=True)
        raise ConflictError("the multipart upload no longer exists; start again") from exc
    return UploadedParts(parts=[
        UploadedPart(part_number=p["PartNumber"], etag=p["ETag"], size=p.get("Size"))
        for p in parts
    ])  # fmt: skip


def complete_multipart(
    ctx: AppContext, *, owner: str, video_id: str, parts: list[UploadedPart]
) -> None:
    """Assemble the parts into the file; repeating it once assembled changes nothing."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    upload = _multipart(video)
    if upload.completed:
        return
    source = video.source
    numbers = [part.part_number for part in parts]
    if numbers != sorted(set(numbers)):
        raise RejectedError("parts must be listed once each, in ascending partNumber order")
    try:
        ctx.storage.complete_multipart(
            bucket=source.bucket, key=source.key, upload_id=upload.upload_id,
            parts=[(part.part_number, part.etag) for part in parts],
        )  # fmt: skip
    except ObjectMissingError as exc:
        if _assembled(ctx, video):
            return
        raise ConflictError("the multipart upload no longer exists; start again") from exc
    except ClientError as exc:  # e.g. InvalidPart: an ETag that S3 does not have
        code = exc.response.get("Error", {}).get("Code", "error")
        raise RejectedError(f"S3 refused to assemble the parts ({code})") from exc
    ctx.repo.mark_assembled(owner=owner, video_id=video_id)


def abort_upload(ctx: AppContext, *, owner: str, video_id: str) -> None:
    """Give up a multipart upload: S3 drops its parts and the video is cancelled."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    upload = _multipart(video)
    source = video.source
    ctx.storage.abort_multipart(bucket=source.bucket, key=source.key, upload_id=upload.upload_id)
    ctx.repo.move_phase(
        owner=owner, video_id=video_id, before=VideoPhase.AWAITING_UPLOAD,
        after=VideoPhase.CANCELLED, error="upload aborted",
    )  # fmt: skip


def _check_upload(ctx: AppContext, video: VideoRecord) -> None:
    """The object exists, has the declared size and type, and starts like a media file."""
    source, upload = video.source, video.upload
    unassembled = isinstance(upload, MultipartUploadState) and not upload.completed
    if unassembled and not _assembled(ctx, video):
        raise ConflictError("complete the multipart upload first")
    try:
        head = ctx.storage.head(bucket=source.bucket, key=source.key)
    except ObjectMissingError as exc:
        raise ConflictError("nothing has been uploaded for this video yet") from exc
    problem = None
    if head["ContentLength"] != video.size:
        problem = f"uploaded {head['ContentLength']} bytes, but {video.size} were declared"
    elif head.get("ContentType") != video.content_type:
        problem = f"uploaded as {head.get('ContentType')}, but {video.content_type} was declared"
    elif sniff_container(ctx.storage.first_bytes(
        bucket=source.bucket, key=source.key, count=HEAD_BYTES
    )) is None:  # fmt: skip
        problem = NOT_MEDIA
    if problem is None:
        return
    ctx.storage.delete_object(bucket=source.bucket, key=source.key)
    ctx.repo.move_phase(
        owner=video.owner, video_id=video.id, before=VideoPhase.AWAITING_UPLOAD,
        after=VideoPhase.FAILED, error=problem,
    )  # fmt: skip
    raise RejectedError(problem)


def _output_for(ctx: AppContext, video_id: str) -> OutputSpec:
    return OutputSpec(
        bucket=ctx.settings.media_bucket, prefix=output_prefix(video_id), cleanup_on_delete=True
    )


def transcode_for(ctx: AppContext, video: VideoRecord) -> dict[str, Any]:
    return build_video_transcode(
        video_id=video.id,
        owner=video.owner,
        source=SourceSpec(bucket=video.source.bucket, key=video.source.key),
        output=_output_for(ctx, video.id),
        priority=ctx.settings.transcode_priority,
    )


def complete_upload(ctx: AppContext, *, owner: str, video_id: str) -> VideoPublic:
    """Check the upload and start its transcode. Repeating the call changes nothing."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    operated = video.transcode_seq is not None  # the operator has written to it
    if video.phase in (VideoPhase.FAILED, VideoPhase.CANCELLED) and not operated:
        raise ConflictError(f"the upload ended ({video.error}); create a new video")
    if video.phase == VideoPhase.AWAITING_UPLOAD:
        _check_upload(ctx, video)
        queued = ctx.repo.move_phase(
            owner=owner, video_id=video_id, before=VideoPhase.AWAITING_UPLOAD,
            after=VideoPhase.QUEUED, output=_output_for(ctx, video_id),
            transcode=TranscodeRef(namespace=ctx.kube.namespace, name=resource_name(video_id)),
        )  # fmt: skip
        video = queued or owned_video(ctx, owner=owner, video_id=video_id)
    if video.phase != VideoPhase.QUEUED or video.transcode_seq is not None:
        return VideoPublic.from_record(video)  # already past the API's part
    try:
        created = ctx.kube.create_transcode(transcode_for(ctx, video))
    except KUBE_ERRORS as exc:
        logger.error("creating the VideoTranscode for video %s failed: %s", video_id, exc)
        raise UnavailableError("could not start the transcode; try again shortly") from exc
    if created:
        logger.info("video %s: created VideoTranscode %s", video_id, resource_name(video_id))
    return VideoPublic.from_record(video)


def delete_video(ctx: AppContext, *, owner: str, video_id: str) -> None:
    """The resource, the uploaded source, then the document. Each step can be repeated, so a
    failed delete is retried by deleting again. The outputs are the operator's: its finalizer
    (`cleanupOnDelete`) stops the Jobs first, so no worker uploads after they are removed. The
    source may go at once: a worker still reading it is being stopped anyway."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    try:
        ctx.kube.delete_transcode(resource_name(video_id))
    except KUBE_ERRORS as exc:
        raise UnavailableError("could not delete the transcode; try again shortly") from exc
    source, upload = video.source, video.upload
    try:
        if isinstance(upload, MultipartUploadState) and not upload.completed:
            ctx.storage.abort_multipart(
                bucket=source.bucket, key=source.key, upload_id=upload.upload_id
            )
        ctx.storage.delete_object(bucket=source.bucket, key=source.key)
    except S3_ERRORS as exc:
        raise UnavailableError("could not delete the stored files; try again shortly") from exc
    ctx.repo.delete_video(owner=owner, video_id=video_id)
