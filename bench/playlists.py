"""m3u8 against hand-written line scanning, on the media playlist of a 2-hour video.

Times, on one generated playlist of 1200 six-second fMP4 segments, the two playlist jobs of
issue 11, item 7, each done both ways:

- parse (the worker's measurement): `transcode_worker.measure.parse_media_playlist`, which
  uses m3u8, against the line scanner it replaced;
- rewrite (the API's playback): `transcode_api.playlists.rewrite_uris`, the line rewriter it
  keeps, against m3u8 load + set every URI + dump.

Prints the median and p95 of each and checks that both ways agree (for rewriting: on the
URIs; m3u8's dump also rewrites `#EXTINF:6.000000,` as `#EXTINF:6,`).

    .venv/bin/python bench/playlists.py [--rounds 200] [--segments 1200]
"""

import argparse
import statistics
import time
from collections.abc import Callable

import m3u8

from transcode_api.playlists import rewrite_uris
from transcode_worker.measure import MediaPlaylist, Segment, parse_media_playlist


def media_playlist(segments: int) -> str:
    """A VOD fMP4 media playlist as FFmpeg writes it."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:6",
             "#EXT-X-PLAYLIST-TYPE:VOD", '#EXT-X-MAP:URI="init.mp4"']  # fmt: skip
    for index in range(segments):
        lines += ["#EXTINF:6.000000,", f"seg_{index:05d}.m4s"]
    return "\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n"


def parse_by_hand(text: str) -> MediaPlaylist:
    """The worker's parser before m3u8 (the baseline)."""
    target, init_uri, ended = 0, None, False
    segments: list[Segment] = []
    pending: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MAP:"):
            init_uri = line.split('URI="', 1)[1].split('"', 1)[0]
        elif line.startswith("#EXTINF:"):
            pending = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line and not line.startswith("#") and pending is not None:
            segments.append(Segment(line, pending))
            pending = None
    return MediaPlaylist(target, segments, init_uri, ended)


def rewrite_with_m3u8(text: str, resolve: Callable[[str], str]) -> str:
    """What the API's rewriting would be with m3u8: every kind of URI must be named."""
    playlist = m3u8.loads(text)
    for segment in playlist.segments:
        segment.uri = resolve(segment.uri)
        # Each segment carries its own copy of the EXT-X-MAP, and dumps() writes that one.
        if segment.init_section is not None:
            segment.init_section.uri = resolve(segment.init_section.uri)
    for key in playlist.keys:
        if key is not None and key.uri:
            key.uri = resolve(key.uri)
    dumped: str = playlist.dumps()
    return dumped


def sign(uri: str) -> str:
    return f"https://s3.example/videos/v1/720p/{uri}?X-Amz-Signature=0123456789abcdef"


def uris(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line.startswith(("https:", "#EXT-X-MAP"))]


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(name: str, samples: list[float]) -> str:
    p95 = statistics.quantiles(samples, n=20)[-1]
    return f"{name:<18} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=200, help="runs of each way")
    parser.add_argument("--segments", type=int, default=1200, help="segments in the playlist")
    args = parser.parse_args()
    text = media_playlist(args.segments)
    assert parse_media_playlist(text) == parse_by_hand(text)
    assert uris(rewrite_with_m3u8(text, sign)) == uris(rewrite_uris(text, sign))
    print(f"media playlist: {args.segments} segments, {len(text)} bytes, {args.rounds} rounds")
    print(summary("parse by hand", timed(lambda: parse_by_hand(text), args.rounds)))
    print(summary("parse with m3u8", timed(lambda: parse_media_playlist(text), args.rounds)))
    print(summary("rewrite by hand", timed(lambda: rewrite_uris(text, sign), args.rounds)))
    print(summary("rewrite with m3u8", timed(lambda: rewrite_with_m3u8(text, sign), args.rounds)))


if __name__ == "__main__":
    main()
