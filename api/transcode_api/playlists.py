"""Serving private HLS: media playlists with each URI replaced by a short-lived signed URL."""

import posixpath
import re
from collections.abc import Callable

_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')
# The master playlist or a rendition's media playlist (videotranscode.layout's names: the
# worker and the operator write them)
PLAYLIST_PATH = re.compile(r"^(?:[A-Za-z0-9_-]{1,64}/)?[A-Za-z0-9_.-]{1,128}\.m3u8$")


class PlaylistPathError(ValueError):
    """A URI in a playlist points outside the video's own output folder."""


def object_key(prefix: str, playlist_path: str, uri: str) -> str:
    """The S3 key a relative `uri` in the playlist at `prefix/playlist_path` names."""
    if "://" in uri or uri.startswith("/"):
        raise PlaylistPathError(f"not a relative URI: {uri}")
    folder = posixpath.dirname(playlist_path)
    relative = posixpath.normpath(posixpath.join(folder, uri))
    if relative.startswith("../") or relative in {"..", "."}:
        raise PlaylistPathError(f"outside the output folder: {uri}")
    return f"{prefix}/{relative}"


def rewrite_uris(playlist: str, resolve: Callable[[str], str]) -> str:
    """Replace every URI line and `URI="..."` attribute with `resolve(uri)`.

    Line by line rather than with `m3u8` (issue 11, item 7; bench/playlists.py measures it):
    m3u8's dump rewrites the lines we leave alone (`#EXTINF:6.000000,` becomes `#EXTINF:6,`),
    and it replaces only the URIs it is told about, tag by tag (each segment's own copy of
    EXT-X-MAP, keys, ...), where the one `URI="..."` rule here misses none and so never hands
    out a relative, unsigned one. On a 2-hour playlist (1200 segments) its load + dump also
    takes 55-76 ms against 1-3 ms here, though presigning the 1200 URLs costs more (~0.8 s).
    """
    lines = []
    for line in playlist.splitlines():
        stripped = line.strip()
        if not stripped:
            lines.append(line)
        elif stripped.startswith("#"):
            lines.append(_URI_ATTRIBUTE.sub(lambda m: f'URI="{resolve(m.group(1))}"', line))
        else:
            lines.append(resolve(stripped))
    return "\n".join(lines) + "\n"


def is_master(playlist: str) -> bool:
    # One substring test; m3u8's `is_variant` would parse the whole playlist to answer it.
    return "#EXT-X-STREAM-INF" in playlist
