"""The renditions of a transcode (pure): the video rungs chosen from the spec and the probed
source, one audio rendition per audio stream of the source, and what the master playlist says
of each."""

from videotranscode import (
    AUDIO_CODECS,
    DEFAULT_LADDER,
    AudioRendition,
    AudioRenditionResult,
    RenditionPhase,
    RenditionResult,
    RenditionSpec,
    RenditionStatus,
    SourceInfo,
    VideoTranscodeSpec,
    media_playlist,
    plan_audio_renditions,
    select_ladder,
)


def choose_ladder(spec: VideoTranscodeSpec, source: SourceInfo) -> list[RenditionSpec]:
    short_side = min(source.video.width, source.video.height)
    return select_ladder(spec.renditions or list(DEFAULT_LADDER), short_side)


def audio_plan(spec: VideoTranscodeSpec, source: SourceInfo) -> list[AudioRendition]:
    """One audio rendition per audio stream, at the ladder's highest audio bitrate."""
    bitrate = max(rung.audio_bitrate for rung in choose_ladder(spec, source))
    return plan_audio_renditions(source.audio_streams, stereo_bitrate=bitrate)


def video_result(rung: RenditionStatus) -> RenditionResult:
    """A video rung as the master playlist lists it, from its status."""
    width, height = (int(side) for side in (rung.resolution or "0x0").split("x"))
    return RenditionResult(
        name=rung.name,
        width=width,
        height=height,
        frame_rate=rung.frame_rate or 0,
        bandwidth=rung.bandwidth or 0,
        average_bandwidth=rung.average_bandwidth or 0,
        codecs=rung.codecs or "",
        segment_count=0,
        duration_seconds=0,
        playlist_key=rung.playlist or "",
    )


def audio_result(plan: AudioRendition, rung: RenditionStatus, prefix: str) -> AudioRenditionResult:
    """An audio rendition as the master lists it: as measured once it has succeeded; while it
    still encodes (a master published early), as planned."""
    measured = rung.phase == RenditionPhase.SUCCEEDED
    return AudioRenditionResult(
        name=plan.name,
        stream=plan.stream,
        language=plan.language,
        display_name=plan.display_name,
        default=plan.default,
        channels=plan.channels,
        bandwidth=(rung.bandwidth if measured else None) or plan.bitrate,
        average_bandwidth=(rung.average_bandwidth if measured else None) or plan.bitrate,
        codecs=(rung.codecs if measured else None) or AUDIO_CODECS,
        segment_count=0,
        duration_seconds=0,
        playlist_key=rung.playlist or f"{prefix}/{media_playlist(plan.name)}",
    )
