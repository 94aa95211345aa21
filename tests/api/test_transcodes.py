"""The keys and the VideoTranscode the API builds for an upload."""

import re

import pytest

from transcode_api.repository import new_id
from transcode_api.transcodes import build_video_transcode, output_prefix, resource_name, upload_key
from videotranscode import OutputSpec, SourceSpec, VideoTranscodeSpec

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(("filename", "key_end"), [
    ("clip.MP4", "/source.mp4"), ("../../etc/passwd", "/source"), ("a.b.webm", "/source.webm"),
    ("no extension", "/source"), ("x.toolongext", "/source"), ("évian.mov", "/source.mov"),
])  # fmt: skip
def test_upload_keys_stay_under_the_owner(filename: str, key_end: str) -> None:
    key = upload_key(owner="u1", video_id="v1", filename=filename)
    assert key == f"uploads/u1/v1{key_end}"


def test_resource_for_an_upload() -> None:
    video_id = new_id()
    body = build_video_transcode(
        video_id=video_id, owner="u1", priority=5,
        source=SourceSpec(bucket="uploads", key="uploads/u1/x/source.mp4"),
        output=OutputSpec(bucket="media", prefix=output_prefix(video_id), cleanup_on_delete=True),
    )  # fmt: skip
    name = body["metadata"]["name"]
    assert name == resource_name(video_id)
    # Rendition Jobs are named <resource>-<rung>-<8 hex>: still a valid DNS label
    assert DNS_LABEL.match(name)
    assert len(f"{name}-1080p-0123abcd") <= 63
    spec = VideoTranscodeSpec.model_validate(body["spec"])
    assert (spec.video_id, spec.owner, spec.priority) == (video_id, "u1", 5)
    assert body["metadata"]["labels"] == {
        "hlsforge.dev/video-id": video_id,
        "hlsforge.dev/owner": "u1",
    }
