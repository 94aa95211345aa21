"""What the API answers, as typed models (camelCase on the wire, snake_case here).

Unknown fields are ignored, so a newer API with more fields still works with this CLI.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from videotranscode import VideoPhase

PHASES = tuple(phase.value for phase in VideoPhase)
FINISHED = frozenset(phase.value for phase in VideoPhase if phase.finished)


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Token(BaseModel):
    """OAuth2's token response, hence snake_case on the wire too."""

    access_token: str
    expires_in: int


class User(ApiModel):
    id: str
    email: str
    name: str | None = None


class Rendition(ApiModel):
    name: str
    phase: str = "Pending"
    progress: float = 0
    resolution: str | None = None
    bandwidth: int | None = None
    message: str | None = None


class Video(ApiModel):
    id: str
    title: str
    phase: str
    progress: float = 0
    renditions: list[Rendition] = []
    playable_at: datetime | None = None  # its start plays from then on, while it encodes
    error: str | None = None
    filename: str
    content_type: str
    size: int
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    @property
    def playable(self) -> bool:
        """Whether it plays now: succeeded, or started (`playable_at`) and still encoding."""
        started = None if self.playable_at is None else self.playable_at.isoformat()
        return self.phase in PHASES and VideoPhase(self.phase).playable(started)

    @property
    def playable_early(self) -> bool:
        """Its start plays while the rest still encodes."""
        return self.playable and not self.finished


class PostUpload(ApiModel):
    """A form POST straight to S3: `fields` first, then the file as `file`."""

    method: Literal["post"]
    url: str
    fields: dict[str, str]


class MultipartUpload(ApiModel):
    """`part_count` parts of `part_size` bytes (the last one shorter), PUT to part URLs."""

    method: Literal["multipart"]
    part_size: int
    part_count: int


class VideoCreated(ApiModel):
    video: Video
    upload: PostUpload | MultipartUpload


class PartUrl(ApiModel):
    part_number: int
    url: str


class PartUrls(ApiModel):
    parts: list[PartUrl]


class UploadedPart(ApiModel):
    part_number: int
    etag: str
    size: int | None = None


class UploadedParts(ApiModel):
    """The parts S3 holds; `completed`: S3 already assembled them (`parts` is then empty)."""

    parts: list[UploadedPart]
    completed: bool = False


class VideoPage(ApiModel):
    items: list[Video]
    total: int
    page: int
    page_size: int


class Playback(ApiModel):
    master_url: str
    poster_url: str | None = None
    expires_at: datetime | None = None
