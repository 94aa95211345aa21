"""Cancel and retry a video's transcode. Both only annotate its `VideoTranscode`; the
operator does the work and writes the outcome to the video, so these answer 202 with the
video as it is now. What a video's phase allows is decided here, from the read model."""

from transcode_api.context import AppContext
from transcode_api.errors import ConflictError, UnavailableError
from transcode_api.models import VideoPublic
from transcode_api.repository import new_id
from transcode_api.transcodes import cancel_patch, resource_name, retry_patch
from transcode_api.uploads import KUBE_ERRORS, owned_video, transcode_for
from videotranscode import VideoPhase, VideoRecord


def cancel_refusal(video: VideoRecord) -> str | None:
    """Why this video's transcode cannot be cancelled, or None."""
    phase = video.phase
    if phase == VideoPhase.AWAITING_UPLOAD:
        return "the upload is not complete: there is no transcode to cancel"
    if phase.finished:
        return f"the transcode has already ended ({phase.value})"
    return None


def retry_refusal(video: VideoRecord) -> str | None:
    """Why this video's transcode cannot be run again, or None."""
    phase = video.phase
    if not phase.ended:
        state = "has succeeded" if phase == VideoPhase.SUCCEEDED else "has not ended"
        return f"only a failed or cancelled transcode can be retried; this one {state}"
    if video.transcode_seq is None:  # the API's own verdict: the upload was refused or aborted
        return f"the upload ended ({video.error}); create a new video"
    return None


def cancel(ctx: AppContext, *, owner: str, video_id: str) -> VideoPublic:
    """Stop the transcode: its Jobs go, the source stays (a retry starts again from it)."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    if (refusal := cancel_refusal(video)) is not None:
        raise ConflictError(refusal)
    try:
        found = ctx.kube.patch_transcode(resource_name(video_id), cancel_patch())
    except KUBE_ERRORS as exc:
        raise UnavailableError("could not cancel the transcode; try again shortly") from exc
    if not found:  # `complete` could not create it: nothing runs
        raise ConflictError("the transcode has not started; complete the upload again")
    return VideoPublic.from_record(video)


def retry(ctx: AppContext, *, owner: str, video_id: str) -> VideoPublic:
    """Run again what failed or was cancelled; finished renditions are kept. A resource
    deleted behind the API's back (kubectl, its namespace) is created anew."""
    video = owned_video(ctx, owner=owner, video_id=video_id)
    if (refusal := retry_refusal(video)) is not None:
        raise ConflictError(refusal)
    try:
        if not ctx.kube.patch_transcode(resource_name(video_id), retry_patch(new_id())):
            ctx.kube.create_transcode(transcode_for(ctx, video))
    except KUBE_ERRORS as exc:
        raise UnavailableError("could not retry the transcode; try again shortly") from exc
    return VideoPublic.from_record(video)
