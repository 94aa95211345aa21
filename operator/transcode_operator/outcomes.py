"""What a pass decides: the next status, the Kubernetes Events announcing it, and the effects
to carry out before the status is written."""

from dataclasses import dataclass, field

from videotranscode import Phase, VideoTranscodeStatus


@dataclass(frozen=True)
class PhaseEvent:
    """A Kubernetes Event announcing a phase: its reason is that phase, whatever comes next."""

    phase: Phase
    message: str


@dataclass(frozen=True)
class CreateProbe:
    job_name: str


@dataclass(frozen=True)
class StopJobs:
    """Cancelled: delete the resource's unfinished Jobs."""


@dataclass(frozen=True)
class WritePlaylists:
    """Write playlists, in order (media playlists before the master that lists them), before
    the status that points to them. Should that fail, `fallback` and its events are written
    instead, and a later pass tries again."""

    bucket: str
    files: tuple[tuple[str, str], ...]  # (key, playlist text)
    fallback: VideoTranscodeStatus
    fallback_events: list[PhaseEvent]

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.files]

    def text(self, key: str) -> str:
        return dict(self.files)[key]


Effect = CreateProbe | StopJobs | WritePlaylists


@dataclass(frozen=True)
class Outcome:
    status: VideoTranscodeStatus
    events: list[PhaseEvent] = field(default_factory=list)
    effects: tuple[Effect, ...] = ()

    @property
    def create_probe(self) -> bool:
        return any(isinstance(e, CreateProbe) for e in self.effects)

    @property
    def stop_jobs(self) -> bool:
        return any(isinstance(e, StopJobs) for e in self.effects)

    @property
    def write_playlists(self) -> WritePlaylists | None:
        return next((e for e in self.effects if isinstance(e, WritePlaylists)), None)
