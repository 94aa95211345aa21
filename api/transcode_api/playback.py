"""Playback of finished videos, and of the start of videos still encoding.

A video plays once it has succeeded, or from `playableAt` on while the rest still encodes
(`VideoPhase.playable`): its media playlists are then EVENT playlists of the finished prefix,
which grow until they end with EXT-X-ENDLIST. Such a growing playlist must be fetched afresh
on every reload (RFC 8216 section 6.3.4), so it is served as not cacheable.

Outputs are private: the API hands out a playback URL that carries a short-lived token in its
path and serves the playlists itself. Variant and audio rendition (`EXT-X-MEDIA`) URIs in the
master stay relative, so players resolve them to the API too (any other URI in it is signed);
every segment and init-segment URI in a media playlist becomes a presigned S3 URL. With a
public CDN base URL configured, plain URLs are returned instead.
"""

from collections.abc import Callable
from dataclasses import dataclass

from transcode_api.context import AppContext
from transcode_api.errors import ConflictError, NotFoundError
from transcode_api.models import Playback
from transcode_api.playlists import (
    PLAYLIST_PATH,
    PlaylistPathError,
    is_master,
    object_key,
    rewrite_master,
    rewrite_uris,
)
from transcode_api.security import InvalidTokenError
from transcode_api.storage import ObjectMissingError
from videotranscode import MASTER_PLAYLIST, VideoPhase, VideoRecord
from videotranscode import Playback as StoredPlayback

PlaylistUrl = Callable[[str, str], str]  # (token, playlist path) → absolute URL
ENDLIST = "#EXT-X-ENDLIST"


@dataclass(frozen=True)
class ServedPlaylist:
    """A playlist ready for a player; `final` when it will not change any more (a media
    playlist with EXT-X-ENDLIST, or the master of a video that has succeeded)."""

    text: str
    final: bool


def _output(video: VideoRecord) -> tuple[str, str, StoredPlayback]:
    """(bucket, prefix, playback) of a video that can be played."""
    playback, output = video.playback, video.output
    if not video.phase.playable(video.playable_at) or not (playback and playback.master_playlist):
        raise ConflictError(f"the video is not ready to play (phase {video.phase})")
    if output is None:  # set when the transcode is queued: only a hand-made record lacks it
        raise ConflictError("the video has no recorded output location")
    prefix = playback.master_playlist.rsplit("/", 1)[0]
    return output.bucket, prefix, playback


def playback_urls(ctx: AppContext, video: VideoRecord, playlist_url: PlaylistUrl) -> Playback:
    bucket, _, playback = _output(video)
    thumbnail = playback.thumbnail
    if base := ctx.settings.public_base_url:
        base = base.rstrip("/")
        return Playback(
            master_url=f"{base}/{playback.master_playlist}",
            poster_url=f"{base}/{thumbnail}" if thumbnail else None,
            expires_at=None,
        )
    seconds = ctx.settings.playback_url_seconds
    token = ctx.tokens.playback_token(video.id, seconds)
    return Playback(
        master_url=playlist_url(token, MASTER_PLAYLIST),
        poster_url=ctx.storage.signed_get(bucket=bucket, key=thumbnail, seconds=seconds)
        if thumbnail
        else None,
        expires_at=ctx.storage.expiry(seconds),
    )


def playlist(ctx: AppContext, *, token: str, path: str) -> ServedPlaylist:
    """The playlist at `path` of the video the token is for, ready for a player."""
    try:
        video_id = ctx.tokens.playback_video_id(token)
    except InvalidTokenError as exc:
        raise NotFoundError("playback link expired or invalid") from exc
    video = ctx.repo.playable_video(video_id)
    if video is None or not PLAYLIST_PATH.match(path):
        raise NotFoundError("playlist not found")
    bucket, prefix, _ = _output(video)
    try:
        text = ctx.storage.read_text(bucket=bucket, key=f"{prefix}/{path}")
    except ObjectMissingError as exc:
        raise NotFoundError("playlist not found") from exc
    seconds = ctx.settings.playback_url_seconds

    def sign(uri: str) -> str:
        key = object_key(prefix, path, uri)
        return ctx.storage.signed_get(bucket=bucket, key=key, seconds=seconds)

    try:
        if is_master(text):
            master = rewrite_master(text, path, sign)
            return ServedPlaylist(master, final=video.phase == VideoPhase.SUCCEEDED)
        signed = rewrite_uris(text, sign)
    except PlaylistPathError as exc:
        raise ConflictError(f"the stored playlist {path} is not servable: {exc}") from exc
    return ServedPlaylist(signed, final=any(line.strip() == ENDLIST for line in text.splitlines()))
