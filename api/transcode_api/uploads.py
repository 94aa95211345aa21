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
from transcode_api.repository import Document, new_id, now
from transcode_api.storage import ObjectMissingError
from transcode_api.transcodes import (
    build_video_transcode,
    output_prefix,
    resource_name,
    upload_key,
)
from videotranscode import OutputSpec, SourceSpec, VideoPhase

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
KUBE_ERRORS = (ApiException, HTTPError, OSError)
S3_ERRORS = (ClientError, BotoCoreError)
NOT_MEDIA = "The uploaded file is not a video: its first bytes match no known container format."


def part_size_for(size: int, preferred: int) -> int:
    """The preferred part size, grown (in whole MiB) when S3's 10 000-part limit needs it."""
    return max(preferred, math.ceil(size / MAX_PARTS / MiB) * MiB)


def owned_video(ctx: AppContext, *, owner: str, video_id: str) -> Document:
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
    upload_state: Document
    if body.size <= settings.multipart_threshold_bytes:
        post = ctx.storage.presigned_post(
            bucket=bucket, key=key, content_type=body.content_type, size=body.size,
            seconds=settings.upload_url_seconds,
        )  # fmt: skip
        upload = PostUpload(url=post["url"], fields=post["fields"],
                            expires_at=ctx.storage.expiry(settings.upload_url_seconds))  # fmt: skip
        upload_state = {"method": "post"}
    else:
        part_size = part_size_for(body.size, settings.multipart_part_bytes)
        upload_id = ctx.storage.start_multipart(
            bucket=bucket, key=key, content_type=body.content_type
        )
        upload = MultipartUpload(part_size=part_size, part_count=math.ceil(body.size / part_size))
        upload_state = {"method": "multipart", "uploadId": upload_id, "partSize": part_size,
                        "completed": False}  # fmt: skip
    created = now()
    video = ctx.repo.create_awaiting_upload({
        "_id": video_id, "owner": owner, "title": body.title, "description": body.description,
        "visibility": body.visibility.value, "filename": body.filename,
        "contentType": body.content_type, "size": body.size,
        "source": {"bucket": bucket, "key": key}, "upload": upload_state,
        "phase": VideoPhase.AWAITING_UPLOAD.value, "progress": 0, "renditions": [],
        "error": None, "playback": None, "createdAt": created, "updatedAt": created,
    }, limit=settings.max_pending_uploads)  # fmt: skip
    if video is None:  # parallel requests took the last places
        if upload_state["method"] == "multipart":
            ctx.storage.abort_multipart(bucket=bucket, key=key, upload_id=upload_state["uploadId"])
        raise too_many
    return VideoCreated(video=VideoPublic.from_document(video), upload=upload)


def _multipart(video: Document) -> Document:
    upload: Document = video.get("upload") or {}
    if video["phase"] != VideoPhase.AWAITING_UPLOAD or upload.get("method") != "multipart":
        raise ConflictError("this video has no multipart upload in progress")
    return upload


def _assembled(ctx: AppContext, video: Document) -> bool:
    """Whether S3 holds the whole file. Once it does, say so in the document: assembling may
    have succeeded while noting it failed, and a resuming client must then move on."""
    source = video["source"]
    try:
        head = ctx.storage.head(bucket=source["bucket"], key=source["key"])
    except ObjectMissingError:
        return False
    if head["ContentLength"] != video["size"]:
        return False
    ctx.repo.update_video(owner=video["owner"], video_id=video["_id"],
                          fields={"upload.completed": True})  # fmt: skip
    return True


def part_urls(ctx: AppContext, *, owner: str, video_id: str, numbers: list[int]) -> PartUrls:
    video = owned_video(ctx, owner=owner, video_id=video_id)
    upload = _multipart(video)
    if upload.get("completed"):
        raise ConflictError("the parts are already assembled; complete the video")
    part_count = math.ceil(video["size"] / upload["partSize"])
    if max(numbers) > part_count:
        raise RejectedError(f"this upload has {part_count} parts")
    seconds = ctx.settings.upload_url_seconds
    urls = [
        PartUrl(part_number=number, url=ctx.storage.part_url(
            bucket=video["source"]["bucket"], key=video["source"]["key"],
            upload_id=upload["uploadId"], part_number=number, seconds=seconds,
        ))
        for number in sorted(set(numbers))
    ]  # fmt: skip
    return PartUrls(parts=urls, expires_at=ctx.storage.expiry(seconds))


def uploaded_parts(ctx: AppContext, *, owner: str, video_id: str) -> UploadedParts:
    """The parts S3 already holds, so a resuming client uploads only the others; or
    `completed` when the file is already assembled."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    upload = _multipart(video)
    if upload.get("completed"):
        return UploadedParts(parts=[], completed=True)
    source = video["source"]
    try:
        parts = ctx.storage.uploaded_parts(
            bucket=source["bucket"], key=source["key"], upload_id=upload["uploadId"]
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
    if upload.get("completed"):
        return
    source = video["source"]
    numbers = [part.part_number for part in parts]
    if numbers != sorted(set(numbers)):
        raise RejectedError("parts must be listed once each, in ascending partNumber order")
    try:
        ctx.storage.complete_multipart(
            bucket=source["bucket"], key=source["key"], upload_id=upload["uploadId"],
            parts=[(part.part_number, part.etag) for part in parts],
        )  # fmt: skip
    except ObjectMissingError as exc:
        if _assembled(ctx, video):
            return
        raise ConflictError("the multipart upload no longer exists; start again") from exc
    except ClientError as exc:  # e.g. InvalidPart: an ETag that S3 does not have
        code = exc.response.get("Error", {}).get("Code", "error")
        raise RejectedError(f"S3 refused to assemble the parts ({code})") from exc
    ctx.repo.update_video(owner=owner, video_id=video_id, fields={"upload.completed": True})


def abort_upload(ctx: AppContext, *, owner: str, video_id: str) -> None:
    """Give up a multipart upload: S3 drops its parts and the video is cancelled."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    upload = _multipart(video)
    source = video["source"]
    ctx.storage.abort_multipart(
        bucket=source["bucket"], key=source["key"], upload_id=upload["uploadId"]
    )
    ctx.repo.move_phase(
        owner=owner, video_id=video_id, before=VideoPhase.AWAITING_UPLOAD,
        after=VideoPhase.CANCELLED, fields={"error": "upload aborted"},
    )  # fmt: skip


def _check_upload(ctx: AppContext, video: Document) -> None:
    """The object exists, has the declared size and type, and starts like a media file."""
    source = video["source"]
    if (video.get("upload") or {}).get("completed") is False and not _assembled(ctx, video):
        raise ConflictError("complete the multipart upload first")
    try:
        head = ctx.storage.head(bucket=source["bucket"], key=source["key"])
    except ObjectMissingError as exc:
        raise ConflictError("nothing has been uploaded for this video yet") from exc
    problem = None
    if head["ContentLength"] != video["size"]:
        problem = f"uploaded {head['ContentLength']} bytes, but {video['size']} were declared"
    elif head.get("ContentType") != video["contentType"]:
        problem = f"uploaded as {head.get('ContentType')}, but {video['contentType']} was declared"
    elif sniff_container(ctx.storage.first_bytes(
        bucket=source["bucket"], key=source["key"], count=HEAD_BYTES
    )) is None:  # fmt: skip
        problem = NOT_MEDIA
    if problem is None:
        return
    ctx.storage.delete_object(bucket=source["bucket"], key=source["key"])
    ctx.repo.move_phase(
        owner=video["owner"], video_id=video["_id"], before=VideoPhase.AWAITING_UPLOAD,
        after=VideoPhase.FAILED, fields={"error": problem},
    )  # fmt: skip
    raise RejectedError(problem)


def transcode_for(ctx: AppContext, video: Document) -> dict[str, Any]:
    return build_video_transcode(
        video_id=video["_id"],
        owner=video["owner"],
        source=SourceSpec(bucket=video["source"]["bucket"], key=video["source"]["key"]),
        output=OutputSpec(
            bucket=ctx.settings.media_bucket,
            prefix=output_prefix(video["_id"]),
            cleanup_on_delete=True,
        ),
        priority=ctx.settings.transcode_priority,
    )


def complete_upload(ctx: AppContext, *, owner: str, video_id: str) -> VideoPublic:
    """Check the upload and start its transcode. Repeating the call changes nothing."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    if video["phase"] in (VideoPhase.FAILED, VideoPhase.CANCELLED) and "transcodeSeq" not in video:
        raise ConflictError(f"the upload ended ({video.get('error')}); create a new video")
    if video["phase"] == VideoPhase.AWAITING_UPLOAD:
        _check_upload(ctx, video)
        body = transcode_for(ctx, video)
        transcode = {"namespace": ctx.kube.namespace, "name": body["metadata"]["name"]}
        fields = {"transcode": transcode, "output": body["spec"]["output"]}
        queued = ctx.repo.move_phase(
            owner=owner, video_id=video_id, before=VideoPhase.AWAITING_UPLOAD,
            after=VideoPhase.QUEUED, fields=fields,
        )  # fmt: skip
        video = queued or owned_video(ctx, owner=owner, video_id=video_id)
    if video["phase"] != VideoPhase.QUEUED or "transcodeSeq" in video:
        return VideoPublic.from_document(video)  # already past the API's part
    try:
        created = ctx.kube.create_transcode(transcode_for(ctx, video))
    except KUBE_ERRORS as exc:
        logger.error("creating the VideoTranscode for video %s failed: %s", video_id, exc)
        raise UnavailableError("could not start the transcode; try again shortly") from exc
    if created:
        logger.info("video %s: created VideoTranscode %s", video_id, resource_name(video_id))
    return VideoPublic.from_document(video)


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
    source, upload = video["source"], video.get("upload") or {}
    try:
        if upload.get("method") == "multipart" and not upload.get("completed"):
            ctx.storage.abort_multipart(
                bucket=source["bucket"], key=source["key"], upload_id=upload["uploadId"]
            )
        ctx.storage.delete_object(bucket=source["bucket"], key=source["key"])
    except S3_ERRORS as exc:
        raise UnavailableError("could not delete the stored files; try again shortly") from exc
    ctx.repo.delete_video(owner=owner, video_id=video_id)
