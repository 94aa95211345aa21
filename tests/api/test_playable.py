"""Playable early (issue 12): a video plays from `playableAt` on, while it still encodes.

The `videos` record is written by the operator's own writer (`VideoStore`, `video_update`), the
playlists are in S3 (moto) as the operator publishes them, and everything is asked through a
real uvicorn: the playback route, the playlists it serves and the Socket.IO relay.
"""

from typing import Any

import httpx
import m3u8
import pytest
import socketio
from conftest import ClipFactory
from helpers import Api, Signup, create_and_upload, publish_like_the_operator

from transcode_api.routes.public import GROWING_CACHE_CONTROL, PLAYLIST_MAX_AGE
from videotranscode import PlayablePayload, TranscodeEvent

PLAYABLE_AT = "2026-12-02T01:02:03Z"
MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180,CODECS="avc1.64000d,mp4a.40.2"
180p/index.m3u8
"""
HEAD = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:{kind}
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
"""
SEGMENT = "#EXTINF:2.000000,\nseg_{:05d}.m4s\n"


def media_playlist(segments: int, *, ended: bool) -> str:
    text = HEAD.format(kind="VOD" if ended else "EVENT")
    text += "".join(SEGMENT.format(index) for index in range(segments))
    return text + ("#EXT-X-ENDLIST\n" if ended else "")


def write(s3: Any, key: str, text: str) -> None:
    s3.put_object(Bucket="media", Key=key, Body=text.encode(),
                  ContentType="application/vnd.apple.mpegurl")  # fmt: skip


def publish(api: Api, video_id: str, status: dict[str, Any], seq: int) -> None:
    publish_like_the_operator(api, video_id, status, seq)


def status(video_id: str, phase: str, *, playable_at: str | None) -> dict[str, Any]:
    prefix = f"videos/{video_id}"
    return {
        "phase": phase, "progress": 40 if phase == "Transcoding" else 100,
        "renditions": [{"name": "180p", "phase": "Running", "progress": 40}],
        "playback": {"masterPlaylist": f"{prefix}/master.m3u8",
                     "thumbnail": f"{prefix}/poster.jpg"},
        **({"playableAt": playable_at} if playable_at else {}),
    }  # fmt: skip


@pytest.fixture
def queued(api: Api, signup: Signup, clip: ClipFactory) -> tuple[str, str]:
    """(token, video id) of an uploaded video whose transcode is queued."""
    token = signup()
    with api.client(token) as client:
        video_id = create_and_upload(client, clip("start.mp4", size="320x180", seconds=1))
        assert client.post(f"/api/v1/videos/{video_id}/complete").status_code == 202
    return token, video_id


def test_a_video_plays_from_playable_at_while_it_still_encodes(
    api: Api, signup: Signup, s3: Any, s3_endpoint: str, queued: tuple[str, str]
) -> None:
    token, video_id = queued
    prefix = f"videos/{video_id}"
    write(s3, f"{prefix}/master.m3u8", MASTER)
    write(s3, f"{prefix}/180p/index.m3u8", media_playlist(2, ended=False))

    with api.client(token) as client:
        # Transcoding, with the master already written but no playableAt yet: not playable.
        publish(api, video_id, status(video_id, "Transcoding", playable_at=None), seq=1)
        refused = client.get(f"/api/v1/videos/{video_id}/playback")
        assert refused.status_code == 409, refused.text
        assert client.get(f"/api/v1/videos/{video_id}").json()["playableAt"] is None

        publish(api, video_id, status(video_id, "Transcoding", playable_at=PLAYABLE_AT), seq=2)
        video = client.get(f"/api/v1/videos/{video_id}").json()
        assert (video["phase"], video["playableAt"]) == ("transcoding", "2026-12-02T01:02:03Z")
        [listed] = client.get("/api/v1/videos").json()["items"]
        assert listed["playableAt"] == "2026-12-02T01:02:03Z"
        playback = client.get(f"/api/v1/videos/{video_id}/playback")
        assert playback.status_code == 200, playback.text
        master_url = playback.json()["masterUrl"]

    stranger = signup()
    with api.client(stranger) as client:
        assert client.get(f"/api/v1/videos/{video_id}/playback").status_code == 404
        assert client.get(f"/api/v1/videos/{video_id}").status_code == 404

    master = httpx.get(master_url)
    assert master.status_code == 200
    assert master.text == MASTER
    assert master.headers["cache-control"] == GROWING_CACHE_CONTROL  # rewritten at the end
    variant_url = m3u8.loads(master.text, uri=master_url).playlists[0].absolute_uri
    media = httpx.get(variant_url)
    assert media.status_code == 200
    assert media.headers["cache-control"] == GROWING_CACHE_CONTROL
    growing = m3u8.loads(media.text)
    assert growing.playlist_type == "event"
    assert not growing.is_endlist
    signed = [growing.segment_map[0].uri, *[segment.uri for segment in growing.segments]]
    assert len(signed) == 3
    assert all(url.startswith(s3_endpoint) and "X-Amz-Signature=" in url for url in signed)

    # It grows: a reload sees the new segments at once (nothing cached on the way).
    write(s3, f"{prefix}/180p/index.m3u8", media_playlist(4, ended=False))
    assert len(m3u8.loads(httpx.get(variant_url).text).segments) == 4

    # It ends: VOD with EXT-X-ENDLIST, cached like any finished playlist; the same link works.
    write(s3, f"{prefix}/180p/index.m3u8", media_playlist(5, ended=True))
    publish(api, video_id, status(video_id, "Succeeded", playable_at=PLAYABLE_AT), seq=3)
    final = httpx.get(variant_url)
    assert final.headers["cache-control"] == f"private, max-age={PLAYLIST_MAX_AGE}"
    assert m3u8.loads(final.text).is_endlist
    assert httpx.get(master_url).headers["cache-control"] == f"private, max-age={PLAYLIST_MAX_AGE}"


def test_a_playable_video_that_fails_stops_playing(
    api: Api, s3: Any, queued: tuple[str, str]
) -> None:
    token, video_id = queued
    prefix = f"videos/{video_id}"
    write(s3, f"{prefix}/master.m3u8", MASTER)
    write(s3, f"{prefix}/180p/index.m3u8", media_playlist(1, ended=False))
    publish(api, video_id, status(video_id, "Transcoding", playable_at=PLAYABLE_AT), seq=1)
    with api.client(token) as client:
        master_url = client.get(f"/api/v1/videos/{video_id}/playback").json()["masterUrl"]
        assert httpx.get(master_url).status_code == 200
        publish(api, video_id, {**status(video_id, "Failed", playable_at=PLAYABLE_AT),
                                "message": "the 180p worker failed"}, seq=2)  # fmt: skip
        assert client.get(f"/api/v1/videos/{video_id}/playback").status_code == 409
    assert httpx.get(master_url).status_code == 404


def test_public_listing_keeps_to_succeeded_videos(
    api: Api, s3: Any, queued: tuple[str, str]
) -> None:
    token, video_id = queued
    with api.client(token) as client:
        patched = client.patch(f"/api/v1/videos/{video_id}", json={"visibility": "public"})
        assert patched.status_code == 200, patched.text
        publish(api, video_id, status(video_id, "Transcoding", playable_at=PLAYABLE_AT), seq=1)
        assert client.get("/api/v1/public/videos").json()["items"] == []
        assert client.get(f"/api/v1/public/videos/{video_id}/playback").status_code == 404
        publish(api, video_id, status(video_id, "Succeeded", playable_at=PLAYABLE_AT), seq=2)
        [listed] = client.get("/api/v1/public/videos").json()["items"]
    assert (listed["id"], listed["playableAt"]) == (video_id, "2026-12-02T01:02:03Z")


def connect(api: Api, token: str, namespace: str = "/") -> socketio.SimpleClient:
    client = socketio.SimpleClient()
    client.connect(api.url, auth={"token": token}, transports=["websocket"], namespace=namespace,
                   wait_timeout=10)  # fmt: skip
    return client


def test_the_playable_event_reaches_the_owner_only(
    api: Api, signup: Signup, queued: tuple[str, str]
) -> None:
    token, video_id = queued
    with api.client(token) as client:
        owner = client.get("/api/v1/auth/me").json()["id"]
    payload = PlayablePayload.model_validate({
        **status(video_id, "Transcoding", playable_at=PLAYABLE_AT),
        "videoId": video_id, "owner": owner,
    })  # fmt: skip
    assert api.settings.service_token is not None
    browser, stranger = connect(api, token), connect(api, signup())
    operator = connect(api, api.settings.service_token.get_secret_value(), "/internal")
    try:
        operator.emit(TranscodeEvent.PLAYABLE.value, payload.wire())
        event, received = browser.receive(timeout=10)
        assert event == "transcode.playable"
        assert received == {key: value for key, value in payload.wire().items() if key != "owner"}
        assert received["playableAt"] == PLAYABLE_AT
        assert received["playback"]["masterPlaylist"] == f"videos/{video_id}/master.m3u8"
        with pytest.raises(socketio.exceptions.TimeoutError):
            stranger.receive(timeout=1)
    finally:
        for sock in (browser, stranger, operator):
            sock.disconnect()
