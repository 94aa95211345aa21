"""The worker's jobs: probe a source, encode rungs, build a whole ladder."""

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from transcode_worker import ffmpeg
from transcode_worker.audio import AudioEncoding, build_audio_args
from transcode_worker.encode import Packaging, TimeSlice, build_encode_args
from transcode_worker.errors import BadInputError, WorkerError
from transcode_worker.growing import GrowingPublisher, as_vod
from transcode_worker.measure import (
    MediaPlaylist,
    first_picture_time,
    measure_audio_rendition,
    measure_rendition,
    parse_media_playlist,
)
from transcode_worker.packets import decode_start, seeks_to_keyframes
from transcode_worker.playlist import rewrite_target_duration
from transcode_worker.probe import PosterOptions, ProbedSource, probe_source, write_poster
from transcode_worker.progress import ProgressTracker
from transcode_worker.settings import WorkerSettings
from transcode_worker.slicing import is_sound_tail, plan_slice, slice_grid
from transcode_worker.storage import (
    fetch_source,
    is_s3,
    location_of,
    object_size,
    presigned_source,
    publish,
    read_output,
)
from videotranscode import (
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    POSTER,
    AudioRenditionResult,
    RenditionResult,
    RenditionSpec,
    SliceResult,
    SliceSegment,
    SourceInfo,
    audio_display_names,
    build_master_playlist,
    default_audio_index,
    media_playlist,
    plan_audio_renditions,
    reads_source_ranges,
    select_ladder,
    slice_result,
)
from videotranscode.slicing import output_frame_rate

Event = dict[str, Any]
Emit = Callable[[Event], None]


@contextmanager
def _workspace(settings: WorkerSettings) -> Iterator[Path]:
    """A scratch directory that is gone afterwards, whatever happens."""
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.scratch_dir, prefix="hlsforge-") as work:
        yield Path(work)


def _probe(
    source: str,
    work: Path,
    settings: WorkerSettings,
    facts: SourceInfo | None = None,
    *,
    streamed: bool = False,
) -> ProbedSource:
    """The source, ready to encode. With the probe's `facts` (a rendition or audio Job's
    `--source-info`) it is not probed again; without them (`hlsforge-worker rendition` on a
    laptop, an older operator) it is. With `streamed` (the probe, a time slice, an audio
    rendition) an S3 source is not downloaded: FFmpeg reads it through a presigned URL, the
    probe and a slice only the byte ranges they need, and an audio rendition's first segments
    are stored within seconds rather than after a download of the whole source.

    Whole video rungs download the source: a download is retried part by part by boto3 and
    then read from local disk at full speed, with as many seeks as a badly interleaved file
    needs (each one a new request over HTTP); and an encode of hours would outlive a
    short-lived URL when it has to reconnect."""
    if facts is not None and facts.has_encoding_facts():
        if streamed and reads_source_ranges(source, facts):
            return ProbedSource.from_facts(presigned_source(source, settings), facts)
        return ProbedSource.from_facts(fetch_source(source, work, settings), facts)
    readable: Path | str
    size = None
    if streamed and is_s3(source):
        readable, size = presigned_source(source, settings), object_size(source, settings)
    else:
        readable = fetch_source(source, work, settings)
    return probe_source(
        readable, size_bytes=size, min_duration=settings.min_duration_seconds,
        max_duration=settings.max_duration_seconds,
    )  # fmt: skip


@contextmanager
def _transfer_errors_retried(probed: ProbedSource) -> Iterator[None]:
    """While FFmpeg reads the source over HTTP (a slice's ranges), what looks like a broken
    file is taken for a broken transfer: the probe read the whole file and found it whole, so
    the pod fails with exit 1 and is tried again, rather than failing the video as bad input
    (exit 2). FFmpeg's own reconnects (`ProbedSource.input_args`) come first."""
    if isinstance(probed.path, Path):
        yield
        return
    try:
        yield
    except BadInputError as exc:
        raise WorkerError(f"reading the source failed: {exc}") from exc


def probe(
    source: str, output: str | None, settings: WorkerSettings, poster: PosterOptions
) -> dict[str, Any]:
    """Source metadata, plus `<output>/poster.jpg` when an output is given. An S3 source is
    read through a presigned URL, only as far as the probe needs (its index, its tail, its
    first frames and the poster's), so a large upload is not downloaded first."""
    with _workspace(settings) as work:
        probed = _probe(source, work, settings, streamed=True)
        result: dict[str, Any] = {"source": probed.info.model_dump(by_alias=True)}
        if output is not None:
            staging = work / "out"
            staging.mkdir()
            write_poster(probed, staging / POSTER, poster)
            publish(staging, [POSTER], output, settings)
            result["posterKey"] = location_of(output, POSTER)
        return result


def _check_complete(results: Sequence[RenditionResult], source_seconds: float) -> None:
    shortest = min(result.duration_seconds for result in results)
    if shortest < source_seconds * 0.9 - 0.5:
        raise BadInputError(
            f"the video is corrupt: only {shortest:g} of its {source_seconds:g} s could be decoded"
        )


def _encode_rungs(
    probed: ProbedSource,
    staging: Path,
    work: Path,
    rungs: Sequence[RenditionSpec],
    packaging: Packaging,
    *,
    output: str,
    settings: WorkerSettings,
    emit: Emit,
    label: str,
    audio: bool,
    poster: bool,
) -> tuple[list[RenditionResult], Event]:
    """Encode `rungs` from one decode into `staging/<rung>/` and measure them; the progress
    event of 100 % is for the caller to emit once they are stored."""
    video = probed.info.video
    for rung in rungs:
        (staging / rung.name).mkdir(parents=True)
    tracker = ProgressTracker(label, probed.info.duration_seconds)

    def on_line(line: str) -> None:
        if (event := tracker.feed(line)) is not None:
            emit(event)

    args = build_encode_args(probed, rungs, packaging, staging, settings.x264_preset, audio=audio)
    with ThreadPoolExecutor(1) as pool:  # the poster is made while FFmpeg encodes
        made = (
            pool.submit(write_poster, probed, staging / POSTER, PosterOptions()) if poster else None
        )
        ffmpeg.run_with_progress(args, on_line, work / "ffmpeg.log")
        if made is not None:
            made.result()

    frame_rate = float(output_frame_rate(Fraction(video.frame_rate)))
    results = [
        measure_rendition(
            staging / rung.name,
            name=rung.name,
            frame_rate=frame_rate,
            playlist_key=location_of(output, media_playlist(rung.name)),
        )
        for rung in rungs
    ]
    _check_complete(results, probed.info.duration_seconds)
    for rung in rungs:
        rewrite_target_duration(staging / rung.name / MEDIA_PLAYLIST)
    return results, tracker.finish()


def encode(
    source: str,
    output: str,
    rungs: Sequence[RenditionSpec],
    packaging: Packaging,
    *,
    settings: WorkerSettings,
    emit: Emit,
    label: str,
    audio: bool = True,
    facts: SourceInfo | None = None,
) -> list[RenditionResult]:
    """Encode `rungs` from one decode of the source and store them under `output`; without
    `audio`, video only. `facts`: what the probe reported (see `_probe`)."""
    with _workspace(settings) as work:
        probed = _probe(source, work, settings, facts)
        staging = work / "out"
        results, done = _encode_rungs(
            probed, staging, work, rungs, packaging, output=output, settings=settings,
            emit=emit, label=label, audio=audio, poster=False,
        )  # fmt: skip
        publish(staging, [rung.name for rung in rungs], output, settings)
        emit(done)
        return results


def _encode_audio(
    probed: ProbedSource,
    staging: Path,
    work: Path,
    name: str,
    encoding: AudioEncoding,
    *,
    output: str,
    emit: Emit,
    publisher: GrowingPublisher | None = None,
) -> tuple[AudioRenditionResult, Event]:
    """Encode one audio stream into `staging/<name>/` and measure it (and the 100 % event);
    with a `publisher`, its segments are published as they are made, and the rest after."""
    tracks = probed.info.audio_streams
    if not 0 <= encoding.stream < len(tracks):
        raise BadInputError(
            f"the source has no audio stream {encoding.stream} (it has {len(tracks)})"
        )
    track = tracks[encoding.stream]
    rendition_dir = staging / name
    rendition_dir.mkdir(parents=True)
    tracker = ProgressTracker(name, probed.info.duration_seconds)

    def on_line(line: str) -> None:
        if (event := tracker.feed(line)) is not None:
            emit(event)

    args = build_audio_args(probed, encoding, rendition_dir)
    if publisher is not None:
        publisher.start()
    try:
        with _transfer_errors_retried(probed):
            ffmpeg.run_with_progress(args, on_line, work / f"ffmpeg-{name}.log")
    finally:
        if publisher is not None:
            publisher.stop()
    playlist = rendition_dir / MEDIA_PLAYLIST
    playlist.write_text(as_vod(playlist.read_text()))
    result = measure_audio_rendition(
        rendition_dir,
        name=name,
        stream=encoding.stream,
        language=track.language,
        display_name=audio_display_names(tracks)[encoding.stream],
        default=default_audio_index(tracks) == encoding.stream,
        playlist_key=location_of(output, media_playlist(name)),
    )
    source_seconds = probed.info.duration_seconds
    if result.duration_seconds < source_seconds * 0.9 - 0.5:
        raise BadInputError(
            f"the sound is corrupt: only {result.duration_seconds:g} of its "
            f"{source_seconds:g} s could be decoded"
        )
    rewrite_target_duration(playlist)
    if publisher is not None:
        publisher.finish()
    return result, tracker.finish()


def encode_audio(
    source: str,
    output: str,
    name: str,
    encoding: AudioEncoding,
    *,
    settings: WorkerSettings,
    emit: Emit,
    facts: SourceInfo | None = None,
) -> AudioRenditionResult:
    """Encode one audio stream of the source, whole, as the audio-only rendition
    `<output>/<name>/`. `facts`: what the probe reported (see `_probe`)."""
    with _workspace(settings) as work:
        probed = _probe(source, work, settings, facts, streamed=True)
        staging = work / "out"
        publisher = GrowingPublisher(staging, name, output, settings, emit=emit)
        result, done = _encode_audio(
            probed, staging, work, name, encoding, output=output, emit=emit, publisher=publisher
        )
        emit(done)
        return result


def ladder(
    source: str,
    output: str,
    rungs: Sequence[RenditionSpec],
    packaging: Packaging,
    *,
    settings: WorkerSettings,
    emit: Emit,
) -> tuple[list[RenditionResult], list[AudioRenditionResult]]:
    """The whole ladder on this machine: the rungs that fit the source, video only, from one
    decode; one audio rendition per audio stream; the poster; and the master playlist."""
    with _workspace(settings) as work:
        probed = _probe(source, work, settings)
        video = probed.info.video
        rungs = select_ladder(list(rungs), min(video.width, video.height))
        staging = work / "out"
        results, done = _encode_rungs(
            probed, staging, work, rungs, packaging, output=output, settings=settings,
            emit=emit, label="ladder", audio=False, poster=True,
        )  # fmt: skip
        encoded = []
        for plan in plan_audio_renditions(probed.info.audio_streams):
            encoding = AudioEncoding(
                plan.stream, plan.bitrate, packaging.segment_seconds, packaging.segment_type
            )
            encoded.append(
                _encode_audio(probed, staging, work, plan.name, encoding, output=output, emit=emit)
            )
        audio = [result for result, _ in encoded]
        (staging / MASTER_PLAYLIST).write_text(build_master_playlist(results, audio))
        names = [rung.name for rung in rungs] + [a.name for a in audio]
        publish(staging, [*names, POSTER, MASTER_PLAYLIST], output, settings)
        for _, audio_done in encoded:
            emit(audio_done)
        emit(done)
        return results, audio


def encode_slice(
    source: str,
    output: str,
    rung: RenditionSpec,
    packaging: Packaging,
    *,
    slice_seconds: int,
    index: int,
    settings: WorkerSettings,
    emit: Emit,
    audio: bool = True,
    facts: SourceInfo | None = None,
    reuse_stored: bool = False,
) -> SliceResult:
    """Encode time slice `index` of one rung and store its segments, init section and
    `slice_<index>.json` under `<output>/<rung>/`, beside the other slices'. `facts`: what
    the probe reported (see `_probe`): with them, an S3 source's slice is read, not fetched.
    With `reuse_stored` (an earlier Job of the rendition stored it), a stored slice is kept."""
    if reuse_stored and (stored := _stored_slice(output, rung.name, index, settings)) is not None:
        emit(ProgressTracker(rung.name, 0).finish())
        return stored
    with _workspace(settings) as work:
        probed = _probe(source, work, settings, facts, streamed=True)
        time_slice, total = _planned_slice(probed, index, slice_seconds, packaging)
        rung_dir = work / "out" / rung.name
        rung_dir.mkdir(parents=True)
        encoded = float(time_slice.warmup) + _seconds_of(time_slice, probed)
        tracker = ProgressTracker(rung.name, encoded)

        def on_line(line: str) -> None:
            if (event := tracker.feed(line)) is not None:
                emit(event)

        args = build_encode_args(
            probed, [rung], packaging, rung_dir.parent, settings.x264_preset,
            time_slice=time_slice, audio=audio,
        )  # fmt: skip
        with _transfer_errors_retried(probed):
            ffmpeg.run_with_progress(args, on_line, work / "ffmpeg.log")
        key = location_of(output, f"{rung.name}/{slice_result(index)}")
        result = _measured_slice(probed, rung_dir, rung, time_slice, total=total, key=key)
        (rung_dir / slice_result(index)).write_text(result.model_dump_json(by_alias=True))
        names = [f"{rung.name}/{path.name}" for path in sorted(rung_dir.iterdir())]
        publish(rung_dir.parent, names, output, settings)
        emit(tracker.finish())
        return result


def _planned_slice(
    probed: ProbedSource, index: int, slice_seconds: int, packaging: Packaging
) -> tuple[TimeSlice, int]:
    """Slice `index` as it is encoded (the last one cut at the source's end), and how many
    slices the rung has; BadInputError for a slice past the end."""
    duration = probed.info.duration_seconds
    grid = slice_grid(slice_seconds, packaging, _rung_rate(probed))
    time_slice = plan_slice(index, grid)
    total = grid.count(duration)
    start = float(time_slice.start)
    if index >= total:
        raise BadInputError(
            f"slice {index} starts at {start:g} s, at or after the end of "
            f"the {duration:g} s video ({total} slices)"
        )
    if not seeks_to_keyframes(probed.info.container):
        time_slice = dataclasses.replace(time_slice, decode_from=decode_start(
            probed.path, probed.video_index, probed.start_seconds, float(time_slice.encode_start)
        ))  # fmt: skip
    return time_slice, total


def _rung_rate(probed: ProbedSource) -> Fraction:
    return output_frame_rate(Fraction(probed.info.video.frame_rate))


def _seconds_of(time_slice: TimeSlice, probed: ProbedSource) -> float:
    """How long the slice is within the source (the last one ends with it)."""
    return min(float(time_slice.seconds), probed.info.duration_seconds - float(time_slice.start))


def _measured_slice(
    probed: ProbedSource, rung_dir: Path, rung: RenditionSpec, time_slice: TimeSlice, *,
    total: int, key: str,
) -> SliceResult:  # fmt: skip
    """The encoded slice's result, its playlist gone (the operator stitches from the JSON);
    or, where the sound alone reached the last slice, an empty one, its files gone."""
    rate = _rung_rate(probed)
    playlist = rung_dir / time_slice.playlist
    parsed = parse_media_playlist(playlist.read_text() if playlist.exists() else "#EXTM3U")
    first_picture = first_picture_time(rung_dir, parsed)
    if first_picture is None:
        result = _empty_slice(probed, time_slice, total, rate, key)
        for path in rung_dir.iterdir():  # the init section, and any sound of the tail
            path.unlink()
        return result
    result = _slice_result(
        rung_dir, rung, time_slice, playlist=parsed, first_picture=first_picture,
        frame_rate=float(rate), key=key,
    )  # fmt: skip
    assert result.rendition is not None
    _check_complete([result.rendition], _seconds_of(time_slice, probed))
    playlist.unlink()
    return result


def _stored_slice(
    output: str, rung: str, index: int, settings: WorkerSettings
) -> SliceResult | None:
    """Slice `index`'s result as stored under `<output>/<rung>/`; None when there is none."""
    text = read_output(output, f"{rung}/{slice_result(index)}", settings)
    if text is None:
        return None
    try:
        stored = SliceResult.model_validate_json(text)
    except ValidationError:
        return None  # not a result this worker wrote: encode the slice again
    return stored if stored.index == index else None


def _empty_slice(
    probed: ProbedSource, time_slice: TimeSlice, total: int, rate: Fraction, key: str
) -> SliceResult:
    """The result of a slice without a picture, where the sound alone reaches it (the last
    slice); anywhere else, the pictures stopped decoding: BadInputError."""
    pictures_end = probed.info.duration_seconds - probed.video_shortfall_seconds
    if not probed.padding_filters() and is_sound_tail(time_slice, total, rate, pictures_end):
        return SliceResult(
            rendition=None, index=time_slice.index, first_pts_seconds=None, result_key=key,
            segments=[],
        )  # fmt: skip
    raise BadInputError(
        f"the video is corrupt: slice {time_slice.index} (from {float(time_slice.start):g} s) "
        f"has no picture, though the pictures go on to {pictures_end:g} s"
    )


def _slice_result(
    rung_dir: Path,
    rung: RenditionSpec,
    time_slice: TimeSlice,
    *,
    playlist: MediaPlaylist,
    first_picture: float,
    frame_rate: float,
    key: str,
) -> SliceResult:
    """The encoded slice, measured from FFmpeg's playlist of it and its files."""
    measured = measure_rendition(rung_dir, name=rung.name, frame_rate=frame_rate,
                                 playlist_key=key, playlist_name=time_slice.playlist)  # fmt: skip
    init = playlist.init_uri
    digest = None if init is None else hashlib.sha256((rung_dir / init).read_bytes()).hexdigest()
    return SliceResult(
        rendition=measured,
        index=time_slice.index,
        first_pts_seconds=round(first_picture, 6),
        init_uri=init,
        init_sha256=digest,
        result_key=key,
        segments=[SliceSegment(uri=s.uri, duration=s.duration) for s in playlist.segments],
    )
