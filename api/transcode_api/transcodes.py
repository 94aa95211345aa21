"""Pure builders: storage keys of a video and the `VideoTranscode` the API creates for it."""

import re
from typing import Any

from videotranscode import CANCEL_ANNOTATION, GROUP, KIND, RETRY_ANNOTATION, VERSION
from videotranscode.resource import OutputSpec, SourceSpec, VideoTranscodeSpec

LABEL_VIDEO = "hlsforge.dev/video-id"
LABEL_OWNER = "hlsforge.dev/owner"
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,5})$")


def upload_key(*, owner: str, video_id: str, filename: str) -> str:
    """Server-chosen key under the owner's prefix; only a short extension of the client's
    filename survives (tools like it, and it can never escape the prefix)."""
    match = _EXTENSION.search(filename)
    extension = f".{match.group(1).lower()}" if match else ""
    return f"uploads/{owner}/{video_id}/source{extension}"


def output_prefix(video_id: str) -> str:
    """Outputs carry no user id: their URLs may be public (a CDN)."""
    return f"videos/{video_id}"


def resource_name(video_id: str) -> str:
    return f"video-{video_id}"


def build_video_transcode(
    *, video_id: str, owner: str, source: SourceSpec, output: OutputSpec, priority: int
) -> dict[str, Any]:
    spec = VideoTranscodeSpec(
        source=source, output=output, priority=priority, video_id=video_id, owner=owner
    )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": resource_name(video_id),
            "labels": {LABEL_VIDEO: video_id, LABEL_OWNER: owner},
        },
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def cancel_patch() -> dict[str, Any]:
    """Asks the operator to stop what has not finished (kept until a retry)."""
    return {"metadata": {"annotations": {CANCEL_ANNOTATION: "true"}}}


def retry_patch(token: str) -> dict[str, Any]:
    """One merge patch, so the operator never sees the new token with the old cancel."""
    return {"metadata": {"annotations": {CANCEL_ANNOTATION: None, RETRY_ANNOTATION: token}}}
