"""What a transcode writes under its output prefix, and the media types of sources and outputs."""

MASTER_PLAYLIST = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"  # one per rendition, in a directory named after it
POSTER = "poster.jpg"

HLS_PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# By file suffix: what the worker stores, so S3 serves each object with its type.
OUTPUT_CONTENT_TYPES = {
    ".m3u8": HLS_PLAYLIST_TYPE,
    ".ts": "video/mp2t",
    ".m4s": "video/mp4",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
}
# The source types the API accepts by default, by filename extension. Clients use this table
# before the system's guess, which is often wrong for video (`.ts` as Qt Linguist, `.3gp` as
# audio).
SOURCE_CONTENT_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
    ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg", ".ts": "video/mp2t", ".m2ts": "video/mp2t", ".3gp": "video/3gpp",
    ".flv": "video/x-flv", ".ogv": "video/ogg", ".ogg": "video/ogg", ".wmv": "video/x-ms-wmv",
    ".asf": "video/x-ms-asf",
}  # fmt: skip


def media_playlist(rendition: str) -> str:
    """A rendition's media playlist, relative to the master playlist."""
    return f"{rendition}/{MEDIA_PLAYLIST}"


def slice_result(index: int) -> str:
    """A time slice's result (segments and their durations), in its rendition's directory."""
    return f"slice_{index}.json"
