"""Recognise a media container from an object's first bytes (its "magic numbers")."""

HEAD_BYTES = 512  # enough for two MPEG-TS packets

_ISO_BOX_TYPES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}
_TS_PACKET = 188


def _is_transport_stream(head: bytes) -> bool:
    """Sync bytes 188 bytes apart; M2TS (Blu-ray) packets carry a 4-byte prefix."""
    for start, size in ((0, _TS_PACKET), (4, _TS_PACKET + 4)):
        syncs = head[start::size][:2]
        if len(syncs) == 2 and syncs == b"GG":
            return True
    return False


def sniff_container(head: bytes) -> str | None:  # noqa: PLR0911 (one return per format)
    """The container family the bytes start like, or None when they look like no media."""
    if head[4:8] in _ISO_BOX_TYPES:
        return "isobmff"  # MP4, MOV, 3GP, M4V
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # MKV, WebM
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"  # WMV
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg-ps"  # a program stream, or a bare MPEG video stream
    if _is_transport_stream(head):
        return "mpeg-ts"
    return None
