"""Request and response bodies (camelCase on the wire).

Every request model forbids unknown fields and types each one, so user input never reaches a
MongoDB filter as an operator (`{"$ne": null}` where a string belongs is a 422).
"""

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from transcode_api.records import UserRecord
from videotranscode import RenditionStatus, VideoPhase, VideoRecord, Visibility

T = TypeVar("T")
MAX_PAGE_SIZE = 100
MAX_PARTS_PER_REQUEST = 100
MAX_PARTS = 10_000  # S3's limit per multipart upload
VIDEO_ID_PATTERN = r"^[0-9a-f]{24}$"

Text = Annotated[str, StringConstraints(strip_whitespace=True)]


def _one_email_reason(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """email-validator's reasons quote parts of the address (its invalid characters, IDNA
    errors), and error answers never repeat what was sent."""
    try:
        return handler(value)
    except ValueError:
        raise PydanticCustomError("value_error", "value is not a valid email address") from None


Email = Annotated[EmailStr, WrapValidator(_one_email_reason)]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# --- users and tokens ------------------------------------------------------------------------


class UserCreate(ApiModel):
    email: Email
    password: str = Field(min_length=8, max_length=128)
    name: Annotated[Text, Field(min_length=1, max_length=100)] | None = None


class LoginRequest(ApiModel):
    email: Email
    password: str = Field(min_length=1, max_length=128)


class UserPublic(ApiModel):
    id: str
    email: str
    name: str | None
    created_at: datetime

    @classmethod
    def from_record(cls, user: UserRecord) -> Self:
        return cls(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


class Token(BaseModel):
    """OAuth2's token response (RFC 6749 §5.1), hence snake_case."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the scheme's name)
    expires_in: int


# --- videos ----------------------------------------------------------------------------------


class VideoCreate(ApiModel):
    title: Annotated[Text, Field(min_length=1, max_length=200)]
    description: Annotated[Text, Field(max_length=5000)] = ""
    visibility: Visibility = Visibility.PRIVATE
    filename: Annotated[Text, Field(min_length=1, max_length=255)]
    content_type: Annotated[str, Field(max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+$")]
    size: int = Field(ge=1)


class VideoUpdate(ApiModel):
    title: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[Text, Field(max_length=5000)] | None = None
    visibility: Visibility | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, description, visibility")
        return self


class RenditionPublic(ApiModel):
    model_config = ConfigDict(extra="ignore")  # the operator's status carries more

    name: str
    phase: str = "Pending"
    progress: float = 0
    resolution: str | None = None
    bandwidth: int | None = None
    average_bandwidth: int | None = None
    frame_rate: float | None = None
    codecs: str | None = None
    slices: int | None = None  # encoded in time slices: how many, and how many are done
    slices_done: int | None = None
    message: str | None = None

    @classmethod
    def from_status(cls, rendition: RenditionStatus) -> Self:
        return cls.model_validate(rendition.model_dump(mode="json"))


class VideoPublic(ApiModel):
    id: str
    title: str
    description: str
    visibility: Visibility
    phase: VideoPhase
    progress: float
    renditions: list[RenditionPublic]
    # When its start could first be played while the rest still encoded (RFC 3339); it plays
    # from then on, until it fails or is cancelled.
    playable_at: datetime | None = None
    error: str | None
    filename: str
    content_type: str
    size: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, video: VideoRecord) -> Self:
        return cls(
            id=video.id,
            title=video.title,
            description=video.description,
            visibility=video.visibility,
            phase=video.phase,
            progress=video.progress,
            renditions=[RenditionPublic.from_status(r) for r in video.renditions],
            playable_at=datetime.fromisoformat(video.playable_at) if video.playable_at else None,
            error=video.error,
            filename=video.filename,
            content_type=video.content_type,
            size=video.size,
            created_at=video.created_at,
            updated_at=video.updated_at,
        )


class PostUpload(ApiModel):
    """A browser form POST straight to S3: send `fields` first, then the file as `file`."""

    method: Literal["post"] = "post"
    url: str
    fields: dict[str, str]
    expires_at: datetime


class MultipartUpload(ApiModel):
    """Upload `part_count` parts of `part_size` bytes (the last one shorter) to presigned
    part URLs, then complete. Parts already uploaded are listed, so an upload can resume."""

    method: Literal["multipart"] = "multipart"
    part_size: int
    part_count: int


class VideoCreated(ApiModel):
    video: VideoPublic
    upload: PostUpload | MultipartUpload


class PartUrlsRequest(ApiModel):
    part_numbers: list[Annotated[int, Field(ge=1, le=MAX_PARTS)]] = Field(
        min_length=1, max_length=MAX_PARTS_PER_REQUEST
    )


class PartUrl(ApiModel):
    part_number: int
    url: str


class PartUrls(ApiModel):
    parts: list[PartUrl]
    expires_at: datetime


class UploadedPart(ApiModel):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=200)
    size: int | None = None


class UploadedParts(ApiModel):
    parts: list[UploadedPart]
    completed: bool = False  # S3 holds the assembled file: go on to `complete`


class CompleteMultipartRequest(ApiModel):
    parts: list[UploadedPart] = Field(min_length=1, max_length=MAX_PARTS)


class Playback(ApiModel):
    master_url: str
    poster_url: str | None
    expires_at: datetime | None  # None: plain URLs that do not expire


class ErrorMessage(BaseModel):
    """Every error but a malformed request: what went wrong, for people."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class FieldErrors(BaseModel):
    """A malformed request: one entry per bad field, never the value that was sent."""

    detail: list[FieldError]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "Missing, invalid or expired token"},
    404: {"model": ErrorMessage, "description": "No such video for this user"},
    409: {"model": ErrorMessage, "description": "The video is not in a state for this"},
    413: {"model": ErrorMessage, "description": "The request body is over the size limit"},
    422: {"model": ErrorMessage | FieldErrors, "description": "Unacceptable input or upload"},
    429: {"model": ErrorMessage, "description": "A limit is reached; see Retry-After if given"},
    503: {"model": ErrorMessage, "description": "A backing service is down; retry"},
}


class Page(ApiModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int
