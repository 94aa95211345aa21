"""Recognising uploads by their first bytes: real containers made by FFmpeg, and impostors."""

from pathlib import Path

import pytest
from helpers import ffmpeg

from transcode_api.media import HEAD_BYTES, sniff_container

SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10:duration=0.5"]
CONTAINERS = {  # file name → (encoder options, expected family)
    "a.mp4": (["-c:v", "libx264"], "isobmff"),
    "a.mov": (["-c:v", "libx264"], "isobmff"),
    "a.3gp": (["-c:v", "libx264"], "isobmff"),
    "a.mkv": (["-c:v", "libx264"], "matroska"),
    "a.webm": (["-c:v", "libvpx", "-b:v", "100k"], "matroska"),
    "a.avi": (["-c:v", "mpeg4"], "avi"),
    "a.flv": (["-c:v", "flv1"], "flv"),
    "a.wmv": (["-c:v", "wmv2"], "asf"),
    "a.mpg": (["-c:v", "mpeg2video"], "mpeg-ps"),
    "a.ts": (["-c:v", "libx264"], "mpeg-ts"),
    "a.m2ts": (["-c:v", "libx264", "-mpegts_m2ts_mode", "1"], "mpeg-ts"),
}


@pytest.mark.parametrize("name", CONTAINERS)
def test_real_containers_are_recognised(name: str, tmp_path: Path) -> None:
    options, family = CONTAINERS[name]
    path = tmp_path / name
    ffmpeg(*SOURCE, *options, str(path))
    assert sniff_container(path.read_bytes()[:HEAD_BYTES]) == family


def test_impostors_are_not(tmp_path: Path) -> None:
    png, jpeg = tmp_path / "a.png", tmp_path / "a.jpg"
    for image in (png, jpeg):
        ffmpeg(*SOURCE, "-frames:v", "1", str(image))
    impostors = [
        b"", b"\x00" * HEAD_BYTES, b"<!doctype html><html>" * 30, b"%PDF-1.7\n" * 60,
        b"PK\x03\x04" + bytes(HEAD_BYTES), png.read_bytes()[:HEAD_BYTES],
        jpeg.read_bytes()[:HEAD_BYTES], b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(HEAD_BYTES),
        b"G" + bytes(HEAD_BYTES),  # one sync byte is not a transport stream
    ]  # fmt: skip
    for data in impostors:
        assert sniff_container(data) is None, data[:16]
