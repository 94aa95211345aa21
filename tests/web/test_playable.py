"""Playing early, across slice joins (of the pictures, and of the sound in its own rendition), and
with a choice of audio tracks: the web app in headless Chromium with hls.js, against the API
(real uvicorn, SecantusDB, moto S3).

The HLS trees are made with the real worker (or plain FFmpeg for audio-only renditions), put in
S3 where the operator would put them, and the `videos` record is written with the operator's
own writer; the operator itself does not run (the start of a transcode is staged exactly).
"""

import itertools
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Api,
    Signup,
    create_and_upload,
    ffmpeg,
    make_clip,
    publish_like_the_operator,
    run_worker,
    send_like_the_operator,
)
from playwright.sync_api import Page, expect

from videotranscode import (
    OUTPUT_CONTENT_TYPES,
    AudioRenditionResult,
    PlayablePayload,
    RenditionResult,
    SliceResult,
    TranscodeEvent,
    build_master_playlist,
    master_playlist_errors,
    stitch_media_playlist,
)

RUNG = ["--name", "180p", "--height", "180", "--video-bitrate", "300k"]
PLAYABLE_AT = "2026-12-02T01:02:03Z"

# What the media element and the SourceBuffers behind it do, recorded from the page's start:
# events with the time they happened at, every currentTime, every hls.js error, the media times
# each fragment hls.js buffered covers, and each SourceBuffer (hls.js keeps audio and video in
# separate ones), to read their buffered ranges.
PROBE = """
window.__media = {events: [], times: [], errors: [], buffers: [], live: [], frags: []};
const addSourceBuffer = MediaSource.prototype.addSourceBuffer;
MediaSource.prototype.addSourceBuffer = function (type) {
  const buffer = addSourceBuffer.call(this, type);
  window.__media.buffers.push({type, buffer});
  return buffer;
};
const ranges = (buffered) => Array.from({length: buffered.length},
                                        (_, i) => [buffered.start(i), buffered.end(i)]);
window.__buffered = () => ({
  element: ranges(document.getElementById("player").buffered),
  buffers: window.__media.buffers.map(
    ({type, buffer}) => ({type, ranges: ranges(buffer.buffered)})),
});
document.addEventListener("DOMContentLoaded", () => {
  const video = document.getElementById("player");
  for (const type of ["playing", "waiting", "stalled", "seeking", "ended", "error"]) {
    video.addEventListener(type, () => window.__media.events.push([type, video.currentTime]));
  }
  video.addEventListener("timeupdate", () => window.__media.times.push(video.currentTime));
  const loadSource = Hls.prototype.loadSource;
  Hls.prototype.loadSource = function (url) {
    this.on(Hls.Events.ERROR, (_, data) => window.__media.errors.push(
      `${data.type} ${data.details}${data.fatal ? " (fatal)" : ""}`));
    this.on(Hls.Events.LEVEL_LOADED, (_, data) => window.__media.live.push(data.details.live));
    this.on(Hls.Events.FRAG_BUFFERED, (_, {frag}) => {
      for (const [kind, stream] of Object.entries(frag.elementaryStreams)) {
        if (stream) window.__media.frags.push([frag.type, kind, stream.startPTS, stream.endPTS]);
      }
    });
    return loadSource.call(this, url);
  };
});
"""

# The sound the page plays, as heard: the media element's output goes through Web Audio to an
# AudioWorklet that measures the RMS of every 128-frame block. The page's main thread stamps
# each batch of 16 blocks with the AudioContext's and the element's clocks as it receives it.
# (The worklet's module is a blob: URL, which the page's CSP refuses: that test bypasses it.)
METER_WORKLET = """
registerProcessor("meter", class extends AudioWorkletProcessor {
  constructor() { super(); this.rms = []; }
  process(inputs) {
    const channel = inputs[0][0];
    let sum = 0;
    if (channel) for (const x of channel) sum += x * x;
    this.rms.push(channel ? Math.sqrt(sum / channel.length) : 0);
    if (this.rms.length === 16) {
      this.port.postMessage({frame: currentFrame + 128, rms: this.rms});
      this.rms = [];
    }
    return true;
  }
});
"""
METER = """
window.__meter = {batches: [], rate: 0, error: null};
document.addEventListener("DOMContentLoaded", async () => {
  const video = document.getElementById("player");
  video.addEventListener("playing", () => { video.muted = false; });  // the app mutes it
  try {
    const context = new AudioContext();
    window.__meter.rate = context.sampleRate;
    const module = new Blob([METER_WORKLET], {type: "text/javascript"});
    await context.audioWorklet.addModule(URL.createObjectURL(module));
    const node = new AudioWorkletNode(context, "meter");
    node.port.onmessage = ({data}) => window.__meter.batches.push(
      {...data, context: context.currentTime, media: video.currentTime, paused: video.paused});
    context.createMediaElementSource(video).connect(node).connect(context.destination);
  } catch (error) { window.__meter.error = String(error); }
});
""".replace("METER_WORKLET", json.dumps(METER_WORKLET))
TONE_RMS = 0.125 / 2**0.5  # FFmpeg's `sine` source: amplitude 1/8


@dataclass
class Staged:
    """A video of a signed-in user, its media in S3 under `prefix`."""

    token: str
    owner: str
    video_id: str
    prefix: str


@pytest.fixture(scope="module")
def autoplay() -> bool:
    return True


@pytest.fixture
def staged(api: Api, signup: Signup, tmp_path: Path) -> Staged:
    """An uploaded video whose transcode is queued (the record has its output location)."""
    token = signup()
    with api.client(token) as client:
        owner = client.get("/api/v1/auth/me").json()["id"]
        video_id = create_and_upload(client, make_clip(tmp_path / "up.mp4", seconds=1))
        assert client.post(f"/api/v1/videos/{video_id}/complete").status_code == 202
    return Staged(token, owner, video_id, f"videos/{video_id}")


def signed_in(token: str) -> str:
    return f"sessionStorage.setItem('hlsforge.token', {json.dumps(token)});"


@pytest.fixture
def page(open_page: Callable[..., Page], api: Api, staged: Staged) -> Page:
    """The web app, signed in as the staged video's owner."""
    return open_page(api.url, viewport={"width": 1000, "height": 800},
                     init_scripts=(signed_in(staged.token), PROBE))  # fmt: skip


# --- staging what the operator and the workers would do ----------------------------------------


def encode_rung(source: Path, out: Path, *args: str) -> RenditionResult:
    """One `hlsforge-worker rendition` run into a local directory; its measured result."""
    log = out.parent / f"{out.name}-{uuid.uuid4().hex[:6]}.json"
    run = run_worker("rendition", str(source), str(out), *RUNG, "--termination-log", str(log),
                     *args)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return RenditionResult.model_validate(json.loads(log.read_text())["result"])


def encode_slice(source: Path, out: Path, index: int, *args: str) -> SliceResult:
    run = run_worker("rendition", str(source), str(out), *RUNG, "--slice-index", str(index),
                     *args, env=dict(os.environ))  # fmt: skip
    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout.splitlines()[-1])
    return SliceResult.model_validate_json(Path(done["result"]["resultKey"]).read_text())


def put(s3: Any, key: str, body: bytes) -> None:
    content_type = OUTPUT_CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream")
    s3.put_object(Bucket="media", Key=key, Body=body, ContentType=content_type)


def put_tree(s3: Any, local: Path, prefix: str, *, skip: tuple[str, ...] = ()) -> None:
    for path in sorted(local.rglob("*")):
        if path.is_file() and path.suffix != ".json" and path.name not in skip:
            put(s3, f"{prefix}/{path.relative_to(local).as_posix()}", path.read_bytes())


def publish(api: Api, staged: Staged, phase: str, seq: int, **extra: Any) -> dict[str, Any]:
    """Write the `videos` record as the operator does; returns the status written."""
    status = {
        "phase": phase, "progress": 100 if phase == "Succeeded" else 40,
        "renditions": [{"name": "180p", "phase": "Running", "progress": 40, "slices": 8,
                        "slicesDone": 3}],
        "playback": {"masterPlaylist": f"{staged.prefix}/master.m3u8"}, **extra,
    }  # fmt: skip
    publish_like_the_operator(api, staged.video_id, status, seq)
    return status


def event_playlist(vod: str, segments: int) -> str:
    """The first `segments` of a VOD media playlist, as the EVENT playlist of a prefix."""
    lines, kept = [], 0
    for line in vod.replace("#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-PLAYLIST-TYPE:EVENT").splitlines():
        if line == "#EXT-X-ENDLIST":
            continue
        if line.startswith("#EXTINF") and kept == segments:
            break
        kept += line.startswith("#EXTINF")
        lines.append(line)
    return "\n".join(lines) + "\n"


def media(page: Page) -> dict[str, Any]:
    recorded: dict[str, Any] = page.evaluate(
        "({...window.__media, buffers: undefined, buffered: window.__buffered()})"
    )
    return recorded


def check_played_through(recorded: dict[str, Any], joins: tuple[float, ...]) -> list[float]:
    """Playing, then no wait, stall, seek or error, time only going forward and passing each
    join; returns the times the player reported."""
    events = [event for event, _ in recorded["events"]]
    assert "playing" in events, recorded["events"]
    after_start = events[events.index("playing") :]
    assert [e for e in after_start if e in ("waiting", "stalled", "seeking", "error")] == [], (
        recorded["events"]
    )
    assert recorded["errors"] == [], recorded["errors"]
    times: list[float] = recorded["times"]
    assert times == sorted(times), "playback went backwards"
    for join in joins:
        assert any(join - 0.5 < t < join for t in times), f"no time just before {join}"
        assert any(join < t < join + 0.5 for t in times), f"no time just after {join}"
    return times


def wait_time(page: Page, seconds: float, timeout: float = 20_000) -> None:
    page.wait_for_function(
        f"() => document.getElementById('player').currentTime > {seconds}", timeout=timeout
    )


# --- the tests -----------------------------------------------------------------------------------


def test_it_starts_playing_from_the_start_while_still_transcoding(
    page: Page, api: Api, staged: Staged, s3: Any, tmp_path: Path
) -> None:
    """The record is `transcoding` and the media playlist an EVENT playlist of the first 6 s;
    the player waits, starts on `transcode.playable` from 0 (not the live edge, 3 s in), goes
    on as the playlist grows, and ends once it is VOD with EXT-X-ENDLIST."""
    source = make_clip(tmp_path / "source.mp4", size="320x180", seconds=8)
    rung = encode_rung(source, tmp_path / "hls", "--segment-seconds", "1", "--gop-seconds", "1")
    rung_dir = tmp_path / "hls" / "180p"
    vod = (rung_dir / "index.m3u8").read_text()
    put_tree(s3, tmp_path / "hls", staged.prefix, skip=("index.m3u8",))
    put(s3, f"{staged.prefix}/master.m3u8", build_master_playlist([rung]).encode())
    put(s3, f"{staged.prefix}/180p/index.m3u8", event_playlist(vod, 6).encode())
    publish(api, staged, "Transcoding", seq=1)

    page.goto("/")
    item = page.get_by_test_id("video-item")
    expect(item).to_have_attribute("data-phase", "transcoding")
    expect(item.get_by_test_id("play")).to_be_hidden()
    expect(item.get_by_test_id("rendition-percent")).to_have_text("40% · 3/8 slices")
    page.goto(f"/#/watch/{staged.video_id}")
    expect(page.get_by_test_id("player-error")).to_contain_text("not ready to play yet")

    status = publish(api, staged, "Transcoding", seq=2, playableAt=PLAYABLE_AT)
    payload = PlayablePayload.model_validate(
        {**status, "videoId": staged.video_id, "owner": staged.owner}
    )
    send_like_the_operator(api, TranscodeEvent.PLAYABLE, payload.wire())
    expect(page.get_by_test_id("player-error")).to_be_hidden()
    wait_time(page, 1.5)
    early = media(page)
    assert early["live"][0] is True, "hls.js did not load an EVENT (growing) playlist"
    started = [time for event, time in early["events"] if event == "playing"]
    assert started, early["events"]
    assert started[0] < 0.5, f"it started at {started[0]} s, not at the start"
    assert early["times"][0] < 0.5, early["times"]
    assert page.evaluate("document.getElementById('player').currentTime") < 6

    # The rest is encoded: the media playlist ends; the player plays past the old end and ends.
    put(s3, f"{staged.prefix}/180p/index.m3u8", vod.encode())
    page.wait_for_function("() => document.getElementById('player').ended", timeout=30_000)
    done = media(page)
    assert max(done["times"]) > 7.5, max(done["times"])
    assert done["errors"] == [], done["errors"]
    assert [event for event, _ in done["events"] if event in ("seeking", "error")] == []
    assert False in done["live"], "the VOD playlist never reached hls.js"

    page.get_by_test_id("player-back").click()
    expect(item.get_by_test_id("play")).to_have_text("Play (still encoding)")
    expect(item.get_by_test_id("play")).to_be_visible()
    page.reload()  # as listed by the API: still transcoding, with playableAt
    expect(item).to_have_attribute("data-phase", "transcoding")
    expect(item.get_by_test_id("play")).to_have_text("Play (still encoding)")


def test_a_stitched_rung_plays_across_every_join_without_a_stall(
    page: Page, api: Api, staged: Staged, s3: Any, tmp_path: Path
) -> None:
    """Four slices (a 1 s lead-in, two of 2 s in 1 s segments, and the last second) encoded
    by separate worker runs, stitched by the contract without re-encoding: hls.js plays
    through every join with no `waiting`, no error, and the audio and video SourceBuffers
    each hold one range with no gap."""
    seconds, joins = 6, (1.0, 3.0, 5.0)
    source = make_clip(tmp_path / "source.mp4", size="320x180", seconds=seconds)
    out = tmp_path / "hls"
    options = ("--segment-seconds", "1", "--gop-seconds", "1", "--slice-seconds", "2")
    slices = [encode_slice(source, out, index, *options) for index in range(4)]
    (out / "180p" / "index.m3u8").write_text(stitch_media_playlist(slices, slice_count=4))
    put_tree(s3, out, staged.prefix)
    first = slices[0].rendition
    assert first is not None  # None only for an empty last slice
    master = build_master_playlist([first])
    put(s3, f"{staged.prefix}/master.m3u8", master.encode())
    publish(api, staged, "Succeeded", seq=1, playableAt=PLAYABLE_AT)

    page.goto(f"/#/watch/{staged.video_id}")
    page.wait_for_function("() => document.getElementById('player').ended", timeout=30_000)
    recorded = media(page)
    times = check_played_through(recorded, joins)
    assert max(times) > seconds - 0.3
    buffered = recorded["buffered"]
    # hls.js appends fMP4 with both tracks to one SourceBuffer (else one per track); a
    # SourceBuffer's ranges are where every one of its tracks has media, so a hole in the sound
    # at a join is a hole here too.
    codecs = " ".join(buffer["type"] for buffer in buffered["buffers"]).lower()
    assert "mp4a" in codecs, buffered
    assert "avc1" in codecs, buffered
    for ranges in [buffered["element"], *(buffer["ranges"] for buffer in buffered["buffers"])]:
        assert len(ranges) == 1, f"a gap in the buffered media: {buffered}"
        [(start, end)] = ranges
        assert start < 0.1, buffered
        assert end > seconds - 0.1, buffered


def audio_rendition(out: Path, frequency: int) -> None:
    """An audio-only fMP4 HLS rendition of a sine tone, with plain FFmpeg."""
    out.mkdir(parents=True)
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000:duration=4",
           "-c:a", "aac", "-b:a", "64k", "-f", "hls", "-hls_time", "2",
           "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
           "-hls_fmp4_init_filename", "init.mp4",
           "-hls_segment_filename", str(out / "seg_%05d.m4s"), str(out / "index.m3u8"))  # fmt: skip


def audio_master(tracks: list[tuple[str, str, str]]) -> str:
    """A master with one video variant and the audio renditions `(folder, name, language)`."""
    media = [
        f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="{name}",LANGUAGE="{language}",'
        f'DEFAULT={"YES" if index == 0 else "NO"},AUTOSELECT=YES,URI="{folder}/index.m3u8"'
        for index, (folder, name, language) in enumerate(tracks)
    ]
    return "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS", *media,
        '#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=320x180,CODECS="avc1.64000d,mp4a.40.2",'
        'AUDIO="aud"', "180p/index.m3u8",
    ]) + "\n"  # fmt: skip


@pytest.fixture
def audio_tracks(s3: Any, staged: Staged, tmp_path: Path, api: Api) -> Staged:
    """A video-only rung and two audio-only renditions in S3; the video has succeeded."""
    source = make_clip(tmp_path / "source.mp4", size="320x180", seconds=4, audio=False)
    encode_rung(source, tmp_path / "hls", "--segment-seconds", "2")
    audio_rendition(tmp_path / "hls" / "audio_en", 440)
    audio_rendition(tmp_path / "hls" / "audio_de", 660)
    put_tree(s3, tmp_path / "hls", staged.prefix)
    publish(api, staged, "Succeeded", seq=1)
    return staged


def test_the_audio_track_selector_offers_each_track(
    page: Page, s3: Any, audio_tracks: Staged
) -> None:
    staged = audio_tracks
    tracks = [("audio_en", "English", "en"), ("audio_de", "Deutsch", "de")]
    put(s3, f"{staged.prefix}/master.m3u8", audio_master(tracks).encode())
    page.goto(f"/#/watch/{staged.video_id}")
    select = page.get_by_test_id("audio-select")
    expect(page.get_by_test_id("audio-control")).to_be_visible()
    expect(select.locator("option")).to_have_text(["English (en)", "Deutsch (de)"])
    expect(page.get_by_label("Audio")).to_have_value("0")
    wait_time(page, 0.5)
    select.select_option(label="Deutsch (de)")
    page.wait_for_function("() => window.hlsforgePlayer.hls.audioTrack === 1")
    switched = page.evaluate("window.hlsforgePlayer.hls.audioTracks[1].name")
    assert switched == "Deutsch"
    wait_time(page, 2.5)  # it plays on with the other track
    # A switch flushes and refetches the sound: on a starved machine the player may wait for
    # it (a buffer stall hls.js recovers from by itself, as it has since it plays on).
    errors = [e for e in media(page)["errors"] if e != "mediaError bufferStalledError"]
    assert errors == []

    # One audio track: nothing to choose. (A routed request bypasses the browser's HTTP cache,
    # which may hold the master it fetched a moment ago.)
    put(s3, f"{staged.prefix}/master.m3u8", audio_master(tracks[:1]).encode())
    page.route("**/master.m3u8", lambda route: route.continue_())
    page.get_by_test_id("player-back").click()
    page.goto(f"/#/watch/{staged.video_id}")
    wait_time(page, 0.5)
    assert page.evaluate("window.hlsforgePlayer.hls.audioTracks.length") == 1
    expect(page.get_by_test_id("audio-control")).to_be_hidden()


def encode_audio(source: Path, out: Path, *args: str) -> AudioRenditionResult:
    """One `hlsforge-worker audio` run (the source's first audio stream, encoded whole)."""
    log = out.parent / f"audio-{uuid.uuid4().hex[:6]}.json"
    run = run_worker("audio", str(source), str(out), "--name", "audio-0",
                     "--termination-log", str(log), *args)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return AudioRenditionResult.model_validate(json.loads(log.read_text())["result"])


def test_the_audio_rendition_plays_across_every_join_of_a_sliced_rung(
    open_page: Callable[..., Page], api: Api, staged: Staged, s3: Any, tmp_path: Path
) -> None:
    """A 6 s tone under video in 1 s slices (five joins), each slice a separate video-only
    worker run; the sound is its own rendition (`EXT-X-MEDIA:TYPE=AUDIO`), encoded whole by
    `hlsforge-worker audio`. hls.js buffers the audio fragments end to end from 0, on the
    video's timeline, and plays through every join without waiting; the sound the page plays
    is the tone all along, never silent, and the media clock keeps pace with it."""
    seconds, joins = 6, (1.0, 2.0, 3.0, 4.0, 5.0)
    source = make_clip(tmp_path / "source.mp4", size="320x180", seconds=seconds)
    out = tmp_path / "hls"
    options = ("--segment-seconds", "1", "--gop-seconds", "1", "--slice-seconds", "1",
               "--no-audio")  # fmt: skip
    slices = [encode_slice(source, out, index, *options) for index in range(len(joins) + 1)]
    stitched = stitch_media_playlist(slices, slice_count=len(slices))
    (out / "180p" / "index.m3u8").write_text(stitched)
    sound = encode_audio(source, out, "--segment-seconds", "2")
    first = slices[0].rendition
    assert first is not None  # None only for an empty last slice
    assert "mp4a" not in first.codecs  # the sound is only in audio-0
    put_tree(s3, out, staged.prefix)
    master = build_master_playlist([first], [sound])
    assert "TYPE=AUDIO" in master
    assert master_playlist_errors(master) == []
    put(s3, f"{staged.prefix}/master.m3u8", master.encode())
    publish(api, staged, "Succeeded", seq=1, playableAt=PLAYABLE_AT)

    page = open_page(api.url, init_scripts=(signed_in(staged.token), PROBE, METER),
                     bypass_csp=True)  # fmt: skip
    page.goto(f"/#/watch/{staged.video_id}")
    page.wait_for_function("() => document.getElementById('player').ended", timeout=30_000)
    recorded = media(page)
    meter = page.evaluate("window.__meter")

    check_played_through(recorded, joins)  # from 0 to the end, without waiting

    # The audio fragments, end to end from where the video starts to where it ends.
    audio = sorted((start, end) for kind, track, start, end in recorded["frags"]
                   if (kind, track) == ("audio", "audio"))  # fmt: skip
    video = sorted((start, end) for kind, track, start, end in recorded["frags"]
                   if (kind, track) == ("main", "video"))  # fmt: skip
    assert len(audio) == sound.segment_count == 3, recorded["frags"]
    assert len(video) == seconds, recorded["frags"]
    # (hls.js counts the first from the AAC priming frame, 21 ms before the first sound.)
    assert -0.03 < audio[0][0] < 0.03, audio
    assert audio[-1][1] > seconds - 0.03, audio
    for (_, end), (start, _) in itertools.pairwise(audio):
        assert start == pytest.approx(end, abs=0.001), f"a gap in the audio fragments: {audio}"
    buffered = recorded["buffered"]
    kinds = {buffer["type"].split("/")[0]: buffer["ranges"] for buffer in buffered["buffers"]}
    assert sorted(kinds) == ["audio", "video"], buffered  # two SourceBuffers: two renditions
    for ranges in [buffered["element"], *kinds.values()]:
        assert len(ranges) == 1, f"a gap in the buffered media: {buffered}"
        [(start, end)] = ranges
        assert start < 0.03, buffered
        assert end > seconds - 0.03, buffered

    # What the page played: every 128-frame block the tone, from before the first join to the
    # end; the element's clock moves with the audio clock (no stall, no jump over a gap).
    assert meter["error"] is None, meter["error"]
    batches = meter["batches"]
    frames = [batch["frame"] for batch in batches]
    assert frames == list(range(frames[0], frames[0] + 2048 * len(frames), 2048)), "lost blocks"
    playing = [b for b in batches if 0.4 < b["media"] < seconds - 0.1 and not b["paused"]]
    assert playing, batches
    assert playing[0]["media"] < joins[0] - 0.3, playing[0]
    assert playing[-1]["media"] > joins[-1] + 0.5, playing[-1]
    quietest = min((rms, batch["media"]) for batch in playing for rms in batch["rms"])
    assert quietest[0] > 0.6 * TONE_RMS, f"silence near {quietest[1]:.2f} s of the media"
    offsets = [batch["context"] - batch["media"] for batch in playing]
    assert max(offsets) - min(offsets) < 0.1, offsets
