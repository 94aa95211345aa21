"""Serving private HLS: media playlists with each URI replaced by a short-lived signed URL."""

import posixpath
import re
from collections.abc import Callable

# One attribute of an attribute list (RFC 8216 section 4.2): a quoted string may hold commas
# and `URI=`, never a quote or a line break.
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)')
# The master playlist or a rendition's media playlist (videotranscode.layout's names: the
# worker and the operator write them)
PLAYLIST_PATH = re.compile(r"^(?:[A-Za-z0-9_-]{1,64}/)?[A-Za-z0-9_.-]{1,128}\.m3u8$")


class PlaylistPathError(ValueError):
    """A URI in a playlist points outside the video's own output folder, or cannot be read
    for sure."""


def object_key(prefix: str, playlist_path: str, uri: str) -> str:
    """The S3 key a relative `uri` in the playlist at `prefix/playlist_path` names."""
    return f"{prefix}/{_relative_path(playlist_path, uri)}"


def _attribute_spans(listed: str) -> list[tuple[str, int, int]] | None:
    """(name, start, end) of each attribute's value in an attribute list; None when the text
    is not one (e.g. `6.000000,` of EXTINF)."""
    spans, at = [], 0
    while at < len(listed):
        match = _ATTRIBUTE.match(listed, at)
        if match is None:
            return None
        spans.append((match.group(1), match.start(2), match.end(2)))
        at = match.end()
        if at < len(listed):
            if listed[at] != ",":
                return None
            at += 1
    return spans


def _rewrite_tag(line: str, resolve: Callable[[str], str]) -> str:
    """A tag line with the value of each `URI` attribute (and only those: a NAME may well
    contain `URI="`) replaced by `resolve(value)`."""
    tag, colon, listed = line.partition(":")
    spans = _attribute_spans(listed) if colon else None
    if spans is None:
        if 'URI="' in listed and tag != "#EXTINF":
            raise PlaylistPathError(f"a URI in a tag that is not an attribute list: {line}")
        return line
    rewritten, done = [], 0
    for name, start, end in spans:
        if name == "URI":
            value = listed[start:end]
            if not (value.startswith('"') and value.endswith('"') and len(value) >= 2):
                raise PlaylistPathError(f"an unquoted URI attribute: {line}")
            rewritten += [listed[done:start], f'"{resolve(value[1:-1])}"']
            done = end
    return f"{tag}:{''.join(rewritten)}{listed[done:]}"


def rewrite_uris(playlist: str, resolve: Callable[[str], str]) -> str:
    """Replace every URI line and every `URI` attribute (EXT-X-MAP, EXT-X-MEDIA, EXT-X-KEY, ...)
    with `resolve(uri)`; PlaylistPathError where a URI cannot be read for sure.

    Line by line rather than with `m3u8` (issue 11, item 7; bench/playlists.py measures it):
    m3u8's dump rewrites the lines we leave alone (`#EXTINF:6.000000,` becomes `#EXTINF:6,`),
    and it replaces only the URIs it is told about, tag by tag (each segment's own copy of
    EXT-X-MAP, keys, ...), where the one attribute rule here misses none and so never hands
    out a relative, unsigned one. On a 2-hour playlist (1200 segments) its load + dump also
    takes 55-76 ms against 1-3 ms here, though presigning the 1200 URLs costs more (~0.8 s).
    """
    lines = []
    for line in playlist.splitlines():
        stripped = line.strip()
        if not stripped:
            lines.append(line)
        elif stripped.startswith("#"):
            lines.append(_rewrite_tag(stripped, resolve) if "URI=" in stripped else line)
        else:
            lines.append(resolve(stripped))
    return "\n".join(lines) + "\n"


def _relative_path(playlist_path: str, uri: str) -> str:
    """The path within the video's output folder that `uri`, in the playlist at
    `playlist_path`, names."""
    if "://" in uri or uri.startswith("/"):
        raise PlaylistPathError(f"not a relative URI: {uri}")
    folder = posixpath.dirname(playlist_path)
    relative = posixpath.normpath(posixpath.join(folder, uri))
    if relative.startswith("../") or relative in {"..", "."}:
        raise PlaylistPathError(f"outside the output folder: {uri}")
    return relative


def rewrite_master(master: str, master_path: str, sign: Callable[[str], str]) -> str:
    """The master as players get it from the playback route.

    Its variant and audio rendition playlists (`EXT-X-MEDIA` URIs) stay relative: players
    resolve them against the tokenised URL of the master, so the route serves them too and
    signs their segments. Any other URI (one the route would not serve) is replaced by
    `sign(uri)`; one leaving the video's folder raises PlaylistPathError. No URI is left
    that a player could only fetch unsigned.
    """
    folder = posixpath.dirname(master_path) or "."

    def resolve(uri: str) -> str:
        relative = _relative_path(master_path, uri)
        if PLAYLIST_PATH.match(relative):
            return posixpath.relpath(relative, folder)
        return sign(uri)

    return rewrite_uris(master, resolve)


def is_master(playlist: str) -> bool:
    # One substring test; m3u8's `is_variant` would parse the whole playlist to answer it.
    return "#EXT-X-STREAM-INF" in playlist
