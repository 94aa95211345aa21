"""The worker's jobs: probe a source, encode rungs, build a whole ladder."""

import hashlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

from transcode_worker import ffmpeg
from transcode_worker.encode import Packaging, TimeSlice, build_encode_args
from transcode_worker.errors import BadInputError
from transcode_worker.measure import first_picture_time, measure_rendition, parse_media_playlist
from transcode_worker.playlist import rewrite_target_duration
from transcode_worker.probe import PosterOptions, ProbedSource, probe_source, write_poster
from transcode_worker.progress import ProgressTracker
from transcode_worker.settings import WorkerSettings
from transcode_worker.slicing import plan_slice, slice_total
from transcode_worker.storage import fetch_source, location_of, publish
from videotranscode import (
    MASTER_PLAYLIST,
    MEDIA_PLAYLIST,
    POSTER,
    RenditionResult,
    RenditionSpec,
    SliceResult,
    SliceSegment,
    build_master_playlist,
    media_playlist,
    select_ladder,
    slice_result,
)
from videotranscode.slicing import output_frame_rate

Emit = Callable[[dict[str, Any]], None]


@contextmanager
def _workspace(settings: WorkerSettings) -> Iterator[Path]:
    """A scratch directory that is gone afterwards, whatever happens."""
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.scratch_dir, prefix="hlsforge-") as work:
        yield Path(work)


def _probe(source: str, work: Path, settings: WorkerSettings) -> ProbedSource:
    return probe_source(
        fetch_source(source, work, settings),
        min_duration=settings.min_duration_seconds,
        max_duration=settings.max_duration_seconds,
    )


def probe(
    source: str, output: str | None, settings: WorkerSettings, poster: PosterOptions
) -> dict[str, Any]:
    """Source metadata, plus `<output>/poster.jpg` when an output is given."""
    with _workspace(settings) as work:
        probed = _probe(source, work, settings)
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


def encode(
    source: str,
    output: str,
    rungs: Sequence[RenditionSpec],
    packaging: Packaging,
    *,
    settings: WorkerSettings,
    emit: Emit,
    label: str,
    ladder: bool = False,
) -> list[RenditionResult]:
    """Encode `rungs` from one decode of the source and store them under `output`.

    With `ladder`, rungs taller than the source are dropped first, and the master
    playlist and poster are written too.
    """
    with _workspace(settings) as work:
        probed = _probe(source, work, settings)
        video = probed.info.video
        if ladder:
            rungs = select_ladder(list(rungs), min(video.width, video.height))
        staging = work / "out"
        for rung in rungs:
            (staging / rung.name).mkdir(parents=True)

        tracker = ProgressTracker(label, probed.info.duration_seconds)

        def on_line(line: str) -> None:
            if (event := tracker.feed(line)) is not None:
                emit(event)

        args = build_encode_args(probed, rungs, packaging, staging, settings.x264_preset)
        with ThreadPoolExecutor(1) as pool:  # the poster is made while FFmpeg encodes
            poster = (
                pool.submit(write_poster, probed, staging / POSTER, PosterOptions())
                if ladder
                else None
            )
            ffmpeg.run_with_progress(args, on_line, work / "ffmpeg.log")
            if poster is not None:
                poster.result()

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
        names = [rung.name for rung in rungs]
        if ladder:
            (staging / MASTER_PLAYLIST).write_text(build_master_playlist(results))
            names += [POSTER, MASTER_PLAYLIST]
        publish(staging, names, output, settings)
        emit(tracker.finish())
        return results


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
) -> SliceResult:
    """Encode time slice `index` of one rung and store its segments, init section and
    `slice_<index>.json` under `<output>/<rung>/`, beside the other slices'."""
    with _workspace(settings) as work:
        probed = _probe(source, work, settings)
        duration = probed.info.duration_seconds
        rate = output_frame_rate(Fraction(probed.info.video.frame_rate))
        time_slice = plan_slice(index, slice_seconds, packaging, rate)
        total = slice_total(duration, time_slice)
        start = float(time_slice.start)
        if index >= total:
            raise BadInputError(
                f"slice {index} starts at {start:g} s, at or after the end of "
                f"the {duration:g} s video ({total} slices of {slice_seconds} s)"
            )
        rung_dir = work / "out" / rung.name
        rung_dir.mkdir(parents=True)
        encoded = float(time_slice.warmup) + min(float(time_slice.seconds), duration - start)
        tracker = ProgressTracker(rung.name, encoded)

        def on_line(line: str) -> None:
            if (event := tracker.feed(line)) is not None:
                emit(event)

        args = build_encode_args(
            probed, [rung], packaging, rung_dir.parent, settings.x264_preset, time_slice=time_slice
        )
        ffmpeg.run_with_progress(args, on_line, work / "ffmpeg.log")

        result_key = location_of(output, f"{rung.name}/{slice_result(index)}")
        result = _slice_result(rung_dir, rung, time_slice, float(rate), result_key)
        _check_complete([result.rendition], min(float(time_slice.seconds), duration - start))
        (rung_dir / time_slice.playlist).unlink()  # the operator stitches from the JSON
        (rung_dir / slice_result(index)).write_text(result.model_dump_json(by_alias=True))
        names = [f"{rung.name}/{path.name}" for path in sorted(rung_dir.iterdir())]
        publish(rung_dir.parent, names, output, settings)
        emit(tracker.finish())
        return result


def _slice_result(
    rung_dir: Path, rung: RenditionSpec, time_slice: TimeSlice, frame_rate: float, key: str
) -> SliceResult:
    """The encoded slice, measured from FFmpeg's playlist of it and its files."""
    measured = measure_rendition(rung_dir, name=rung.name, frame_rate=frame_rate,
                                 playlist_key=key, playlist_name=time_slice.playlist)  # fmt: skip
    playlist = parse_media_playlist((rung_dir / time_slice.playlist).read_text())
    init = playlist.init_uri
    digest = None if init is None else hashlib.sha256((rung_dir / init).read_bytes()).hexdigest()
    return SliceResult(
        rendition=measured,
        index=time_slice.index,
        first_pts_seconds=round(first_picture_time(rung_dir, playlist), 6),
        init_uri=init,
        init_sha256=digest,
        result_key=key,
        segments=[SliceSegment(uri=s.uri, duration=s.duration) for s in playlist.segments],
    )
