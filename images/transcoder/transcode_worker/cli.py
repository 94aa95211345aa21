"""`hlsforge-worker`: the command line of the transcoder image.

stdout carries one JSON object per line: progress events, then one `done` or `error` event,
which is also written to the termination-message path for the operator to read.
"""

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from transcode_worker import commands
from transcode_worker.audio import AudioEncoding
from transcode_worker.encode import Packaging
from transcode_worker.errors import WorkerError
from transcode_worker.ffmpeg import redact
from transcode_worker.probe import PosterOptions
from transcode_worker.progress import emit
from transcode_worker.settings import WorkerSettings
from transcode_worker.storage import location_of
from videotranscode import (
    AUDIO_BITRATE,
    DEFAULT_LADDER,
    MASTER_PLAYLIST,
    POSTER,
    AudioArgs,
    PosterArgs,
    ProbeArgs,
    RenditionArgs,
    RenditionSpec,
    SourceInfo,
    parse_bitrate,
)
from videotranscode.slicing import parse_indexes
from videotranscode.worker import SOURCE_INFO_FLAG

MAX_MESSAGE_CHARS = 1000  # Kubernetes keeps at most 4096 bytes of a termination message
SLICE_INDEX_VARIABLE = "JOB_COMPLETION_INDEX"  # set in each pod of an Indexed Job


def parse_rendition_token(token: str) -> RenditionSpec:
    """`720p` (a default rung) or `name:height:videoBitrate[:maxBitrate]`."""
    defaults = {rung.name: rung for rung in DEFAULT_LADDER}
    if ":" not in token:
        if token not in defaults:
            raise ValueError(f"unknown rendition {token!r}; the defaults are {', '.join(defaults)}")
        return defaults[token]
    name, height, bitrate, *peak = token.split(":")
    return RenditionSpec.model_validate(
        {
            "name": name,
            "height": height,
            "videoBitrate": bitrate,
            "maxBitrate": peak[0] if peak else None,
        }
    )


def _renditions(text: str) -> list[RenditionSpec]:
    try:
        return [parse_rendition_token(token.strip()) for token in text.split(",") if token.strip()]
    except (ValueError, ValidationError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _source_info(text: str) -> SourceInfo:
    try:
        return SourceInfo.model_validate_json(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"not the probe's source info: {exc}") from exc


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--termination-log", type=Path, help="where to write the final JSON result")
    common.add_argument("--max-duration", type=float, help="reject longer sources (seconds)")

    facts = argparse.ArgumentParser(add_help=False)
    facts.add_argument(
        SOURCE_INFO_FLAG, dest="source_info", type=_source_info,
        help="what the probe reported (its JSON `source`): the source is not probed again",
    )  # fmt: skip

    packaging = argparse.ArgumentParser(add_help=False)
    packaging.add_argument("--segment-seconds", type=int, default=6)
    packaging.add_argument("--gop-seconds", type=int, default=2)
    packaging.add_argument("--segment-type", choices=["fmp4", "mpegts"], default="fmp4")

    parser = argparse.ArgumentParser(prog="hlsforge-worker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    source_help = "a local path, s3://bucket/key or an http(s) URL"
    output_help = "a local directory or s3://bucket/prefix"

    probe = sub.add_parser("probe", parents=[common], help="metadata and poster frame")
    probe.add_argument("source", help=source_help)
    probe.add_argument("output", nargs="?", help=f"where {POSTER} goes: {output_help}")
    probe.add_argument("--poster-at-percent", type=float, default=10, help="where in the video")
    probe.add_argument("--poster-long-side", type=int, default=640, help="pixels, at most")

    rendition = sub.add_parser(
        "rendition", parents=[common, packaging, facts], help="encode one rung"
    )
    rendition.add_argument("source", help=source_help)
    rendition.add_argument("output", help=f"{output_help}; the rung goes under <output>/<name>/")
    rendition.add_argument("--name", required=True)
    rendition.add_argument("--height", type=int, required=True, help="short side in pixels")
    rendition.add_argument("--video-bitrate", required=True, help="average, e.g. 3000k")
    rendition.add_argument("--max-bitrate", help="VBR cap (default 1.5x the average)")
    rendition.add_argument("--audio-bitrate", default="128k")
    rendition.add_argument(
        "--slice-seconds", type=int, help="encode one time slice of this length (whole segments)"
    )
    rendition.add_argument(
        "--slice-index", type=int, default=os.environ.get(SLICE_INDEX_VARIABLE),
        help=f"which slice, from 0 (default: ${SLICE_INDEX_VARIABLE})",
    )  # fmt: skip
    rendition.add_argument(
        "--done-slices", type=parse_indexes, default=frozenset(),
        help="slices an earlier run stored, e.g. 0-3,5: kept as they are, not encoded again",
    )  # fmt: skip
    rendition.add_argument(
        "--no-audio", dest="audio", action="store_false",
        help="video only (the sound goes in audio renditions: the `audio` command)",
    )  # fmt: skip

    audio = sub.add_parser(
        "audio", parents=[common, facts], help="encode one audio stream as an audio-only rendition"
    )
    audio.add_argument("source", help=source_help)
    audio.add_argument("output", help=f"{output_help}; the rendition goes under <output>/<name>/")
    audio.add_argument("--name", required=True, help="e.g. audio-0")
    audio.add_argument("--stream", type=int, default=0, help="audio stream, from 0")
    audio.add_argument("--bitrate", default=str(AUDIO_BITRATE), help="AAC bits/s, e.g. 128k")
    audio.add_argument("--segment-seconds", type=int, default=6)
    audio.add_argument("--segment-type", choices=["fmp4", "mpegts"], default="fmp4")

    ladder = sub.add_parser("ladder", parents=[common, packaging], help="whole ladder + master")
    ladder.add_argument("source", help=source_help)
    ladder.add_argument("output", help=output_help)
    ladder.add_argument(
        "--renditions",
        type=_renditions,
        default=list(DEFAULT_LADDER),
        help="comma-separated default rung names or name:height:videoBitrate[:maxBitrate]",
    )
    return parser


def probe_args(args: argparse.Namespace) -> ProbeArgs:
    """The parsed `probe` command line as the contract's model (what the operator sends)."""
    poster = None
    if args.output is not None:
        poster = PosterArgs(
            output=args.output, at_percent=args.poster_at_percent, long_side=args.poster_long_side
        )
    return ProbeArgs(source=args.source, poster=poster)


def rendition_args(args: argparse.Namespace) -> RenditionArgs:
    """The parsed `rendition` command line as the contract's model (what the operator sends)."""
    rung = RenditionSpec.model_validate(
        {"name": args.name, "height": args.height, "videoBitrate": args.video_bitrate,
         "maxBitrate": args.max_bitrate, "audioBitrate": args.audio_bitrate}
    )  # fmt: skip
    return RenditionArgs(
        source=args.source, output=args.output, rendition=rung,
        segment_seconds=args.segment_seconds, gop_seconds=args.gop_seconds,
        segment_type=args.segment_type,
        slice_seconds=args.slice_seconds, slice_index=args.slice_index, audio=args.audio,
        done_slices=args.done_slices, source_info=args.source_info,
    )  # fmt: skip


def audio_args(args: argparse.Namespace) -> AudioArgs:
    """The parsed `audio` command line as the contract's model (what the operator sends)."""
    return AudioArgs(
        source=args.source, output=args.output, name=args.name, stream=args.stream,
        bitrate=parse_bitrate(args.bitrate), segment_seconds=args.segment_seconds,
        segment_type=args.segment_type, source_info=args.source_info,
    )  # fmt: skip


def _validated(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Turn the packaging and rung options into models, or stop with a usage error."""
    try:
        if args.command == "audio":
            args.request = audio_args(args)
        elif args.command != "probe":
            args.packaging = Packaging(args.segment_seconds, args.gop_seconds, args.segment_type)
        if args.command == "rendition":
            args.rung = rendition_args(args).rendition
            if args.slice_seconds is not None and args.slice_index is None:
                raise ValueError(f"--slice-seconds needs --slice-index or ${SLICE_INDEX_VARIABLE}")
    except (ValueError, ValidationError) as exc:
        parser.error(str(exc))
    return args


def read_request(argv: Sequence[str]) -> ProbeArgs | RenditionArgs | AudioArgs:
    """A Job's command line (`probe`, `rendition` or `audio`), read as `main` reads it."""
    parser = _parser()
    args = _validated(parser, parser.parse_args(argv))
    if args.command == "probe":
        return probe_args(args)
    if args.command == "rendition":
        return rendition_args(args)
    if args.command == "audio":
        return audio_args(args)
    raise ValueError(f"not a Job's command: {args.command}")


def _run(args: argparse.Namespace, settings: WorkerSettings) -> dict[str, Any]:
    if args.command == "probe":
        request = probe_args(args)
        poster = request.poster
        options = PosterOptions(poster.at_percent, poster.long_side) if poster else PosterOptions()
        return commands.probe(request.source, poster.output if poster else None, settings, options)
    if args.command == "rendition" and args.slice_seconds is not None:
        sliced = commands.encode_slice(
            args.source, args.output, args.rung, args.packaging,
            slice_seconds=args.slice_seconds, index=args.slice_index,
            settings=settings, emit=emit, audio=args.audio, facts=args.source_info,
            reuse_stored=args.slice_index in args.done_slices,
        )  # fmt: skip
        return sliced.summary().model_dump(by_alias=True)
    if args.command == "rendition":
        [result] = commands.encode(
            args.source, args.output, [args.rung], args.packaging,
            settings=settings, emit=emit, label=args.rung.name, audio=args.audio,
            facts=args.source_info,
        )  # fmt: skip
        return result.model_dump(by_alias=True)
    if args.command == "audio":
        wanted: AudioArgs = args.request
        encoding = AudioEncoding(
            wanted.stream, wanted.bitrate, wanted.segment_seconds, wanted.segment_type
        )
        sound = commands.encode_audio(
            wanted.source, wanted.output, wanted.name, encoding, settings=settings, emit=emit,
            facts=wanted.source_info,
        )  # fmt: skip
        return sound.model_dump(by_alias=True)
    results, audio = commands.ladder(
        args.source, args.output, args.renditions, args.packaging, settings=settings, emit=emit
    )
    return {
        "renditions": [result.model_dump(by_alias=True) for result in results],
        "audio": [result.model_dump(by_alias=True) for result in audio],
        "masterKey": location_of(args.output, MASTER_PLAYLIST),
    }


def _write_termination_log(path: Path, event: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # not in a pod: the stdout line is enough
        path.write_text(json.dumps(event, separators=(",", ":")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = _validated(parser, parser.parse_args(argv))
    overrides = {"max_duration_seconds": args.max_duration, "termination_log": args.termination_log}
    settings = WorkerSettings(**{k: v for k, v in overrides.items() if v is not None})
    try:
        event: dict[str, Any] = {
            "event": "done",
            "command": args.command,
            "result": _run(args, settings),
        }
        exit_code = 0
    except WorkerError as exc:
        exit_code = exc.exit_code
        event = _error_event(args.command, exc.reason, str(exc), exit_code)
    except Exception as exc:  # the last line of defence: a readable error line, exit 1
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        exit_code = 1
        event = _error_event(args.command, "Error", f"unexpected failure: {exc}", exit_code)
    if exit_code:
        print(f"hlsforge-worker: {event['message']}", file=sys.stderr)
    emit(event)
    _write_termination_log(settings.termination_log, event)
    return exit_code


def _error_event(command: str, reason: str, message: str, exit_code: int) -> dict[str, Any]:
    return {
        "event": "error",
        "command": command,
        "reason": reason,
        "exitCode": exit_code,
        "message": redact(message)[:MAX_MESSAGE_CHARS],  # no presigned URL ever leaves
    }
