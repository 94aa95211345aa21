"""What the operator asks of the worker: the arguments of `hlsforge-worker probe`,
`hlsforge-worker rendition` and `hlsforge-worker audio`, and the command line that carries them.

The operator builds the Jobs' arguments with `argv()`; the worker's parser reads each one
back into the same model (tests/contract/test_worker_args.py), so a flag renamed on one side
only fails there.

The probe runs once per original: the rendition and audio Jobs carry what it reported
(`source_info`, `--source-info` as JSON), so their pods do not probe the original again.
"""

from typing import Literal, Self

from pydantic import Field, model_validator

from videotranscode._model import CamelModel
from videotranscode.audio import AUDIO_BITRATE, AUDIO_NAME_PATTERN, AudioRendition
from videotranscode.renditions import RenditionSpec
from videotranscode.results import SourceInfo
from videotranscode.slicing import format_indexes

SOURCE_INFO_FLAG = "--source-info"

SegmentType = Literal["fmp4", "mpegts"]


def reads_source_ranges(source: str, source_info: SourceInfo | None) -> bool:
    """Whether a slice's pod reads only its part of the original, through a presigned URL
    FFmpeg seeks in, rather than downloading all of it: for an S3 original, with the probe's
    facts (without them the pod probes, which needs the whole file). The operator sizes the
    pod's scratch space by it; the worker acts on it."""
    return (
        source.startswith("s3://") and source_info is not None and source_info.has_encoding_facts()
    )


def _source_info_argv(source_info: SourceInfo | None) -> list[str]:
    if source_info is None:
        return []
    return [SOURCE_INFO_FLAG, source_info.model_dump_json(by_alias=True, exclude_none=True)]


class PosterArgs(CamelModel):
    """Where the probe writes the poster frame, and which frame it picks."""

    output: str  # a local directory or s3://bucket/prefix; the poster is its POSTER
    at_percent: float = 10  # of the duration
    long_side: int = 640  # pixels, at most


class ProbeArgs(CamelModel):
    source: str  # a local path, s3://bucket/key or an http(s) URL
    poster: PosterArgs | None = None  # none: metadata only

    def argv(self) -> list[str]:
        args = ["probe", self.source]
        if self.poster is not None:
            args += [
                self.poster.output,
                "--poster-at-percent", f"{self.poster.at_percent:g}",
                "--poster-long-side", str(self.poster.long_side),
            ]  # fmt: skip
        return args


class RenditionArgs(CamelModel):
    """Encode one rung of the ladder under `<output>/<rendition name>/`."""

    source: str
    output: str
    rendition: RenditionSpec
    segment_seconds: int = 6
    gop_seconds: int = 2
    segment_type: SegmentType = "fmp4"
    slice_seconds: int | None = None
    """Encode only one time slice of this length (a multiple of the segment length): the
    pictures and sound of [i·L, (i+1)·L). None: the whole source."""
    slice_index: int | None = None
    """The slice i; None with a slice length: the worker reads `JOB_COMPLETION_INDEX`, as an
    Indexed Job's pod sets it."""
    audio: bool = True
    """Mux the source's first audio stream into the rung. False (`--no-audio`): video only,
    for a ladder whose sound is in audio renditions (`AudioArgs`)."""
    done_slices: frozenset[int] = frozenset()
    """Slices an earlier Job of this rendition stored: their pods reuse the stored result
    rather than encode again (`--done-slices 0-3,5`)."""
    source_info: SourceInfo | None = None
    """What the probe reported of the source; None: the worker probes it itself."""

    @property
    def reads_source_ranges(self) -> bool:
        """A slice of an S3 original, with the probe's facts: read through a presigned URL."""
        return self.slice_seconds is not None and reads_source_ranges(self.source, self.source_info)

    @model_validator(mode="after")
    def _whole_segments_per_slice(self) -> Self:
        if self.slice_seconds is not None and (
            self.slice_seconds < 1 or self.slice_seconds % self.segment_seconds
        ):
            raise ValueError("slice seconds must be a positive multiple of segment seconds")
        if self.slice_index is not None and (self.slice_seconds is None or self.slice_index < 0):
            raise ValueError("a slice index needs slice seconds and is at least 0")
        if self.done_slices and (self.slice_seconds is None or min(self.done_slices) < 0):
            raise ValueError("done slices need slice seconds and are at least 0")
        return self

    def argv(self) -> list[str]:
        rung = self.rendition
        sliced = [] if self.slice_seconds is None else ["--slice-seconds", str(self.slice_seconds)]
        if self.slice_index is not None:
            sliced += ["--slice-index", str(self.slice_index)]
        if self.done_slices:
            sliced += ["--done-slices", format_indexes(self.done_slices)]
        return [
            "rendition", self.source, self.output,
            "--name", rung.name,
            "--height", str(rung.height),
            "--video-bitrate", str(rung.video_bitrate),
            "--max-bitrate", str(rung.peak_video_bitrate),  # the cap the operator planned for
            "--audio-bitrate", str(rung.audio_bitrate),
            "--segment-seconds", str(self.segment_seconds),
            "--gop-seconds", str(self.gop_seconds),
            "--segment-type", self.segment_type,
            *sliced,
            *([] if self.audio else ["--no-audio"]),
            *_source_info_argv(self.source_info),
        ]  # fmt: skip


class AudioArgs(CamelModel):
    """Encode one audio stream of the source, whole (never sliced), as an audio-only
    rendition under `<output>/<name>/`, on the same timeline as the video rungs."""

    source: str
    output: str
    name: str = Field(pattern=AUDIO_NAME_PATTERN)
    stream: int = Field(ge=0, le=99)
    """The audio stream, 0-based among the source's audio streams."""
    bitrate: int = Field(default=AUDIO_BITRATE, ge=16_000, le=512_000)
    segment_seconds: int = 6
    segment_type: SegmentType = "fmp4"
    source_info: SourceInfo | None = None
    """What the probe reported of the source; None: the worker probes it itself."""

    @classmethod
    def for_rendition(
        cls,
        rendition: AudioRendition,
        *,
        source: str,
        output: str,
        segment_seconds: int = 6,
        segment_type: SegmentType = "fmp4",
        source_info: SourceInfo | None = None,
    ) -> "AudioArgs":
        """The arguments of a planned audio rendition (`plan_audio_renditions`)."""
        return cls(
            source=source, output=output, name=rendition.name, stream=rendition.stream,
            bitrate=rendition.bitrate, segment_seconds=segment_seconds, segment_type=segment_type,
            source_info=source_info,
        )  # fmt: skip

    @property
    def reads_source_ranges(self) -> bool:
        """An S3 original, with the probe's facts: streamed through a presigned URL."""
        return reads_source_ranges(self.source, self.source_info)

    def argv(self) -> list[str]:
        return [
            "audio", self.source, self.output,
            "--name", self.name,
            "--stream", str(self.stream),
            "--bitrate", str(self.bitrate),
            "--segment-seconds", str(self.segment_seconds),
            "--segment-type", self.segment_type,
            *_source_info_argv(self.source_info),
        ]  # fmt: skip
