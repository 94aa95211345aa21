"""A typed client of the hlsforge API (`/api/v1`), over httpx.

Every failure becomes one exception:

ApiError                  .status is the HTTP status, or None when no answer came
├── status None           the API could not be reached (connection refused, timeout, …)
├── status 401            not signed in, or the sign-in expired
├── status 404            no such video (or not yours)
├── other 4xx             the request or the file was refused: 409 (not in a state that allows
│                         it), 422 (the request or the uploaded file was rejected), 429, …
└── 5xx                   the API or something behind it failed
.detail carries the API's `{"detail": ...}` reason.
"""

from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from hlsforge_cli.models import (
    PartUrl,
    PartUrls,
    Playback,
    Token,
    UploadedPart,
    UploadedParts,
    User,
    Video,
    VideoCreated,
    VideoPage,
)

__all__ = ["ApiClient", "ApiError"]

M = TypeVar("M", bound=BaseModel)
MAX_PAGE_SIZE = 100
MAX_PARTS_PER_REQUEST = 100


class ApiError(Exception):
    """The API said no (`status`, `detail`), or could not be reached (`status` None)."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def error_detail(response: httpx.Response) -> str:
    """The API's `detail`: a sentence, or FastAPI's list of field errors."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code} {response.reason_phrase}".strip()
    if isinstance(detail, list):
        return "; ".join(_field_error(item) for item in detail)
    return str(detail)


def _field_error(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
    return f"{where}: {item.get('msg')}" if where else str(item.get("msg"))


class ApiClient:
    """The API at `base_url`, signed in with `token` (None: only `login` works)."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the API at {self.base_url}: {exc}") from exc
        if response.is_error:
            raise ApiError(error_detail(response), response.status_code)
        return response

    def _parse(self, model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApiError(f"unexpected answer from {response.request.url.path}: {exc}") from exc

    # --- auth -------------------------------------------------------------------------------

    def login(self, email: str, password: str) -> Token:
        response = self._request("POST", "/api/v1/auth/login",
                                 json={"email": email, "password": password})  # fmt: skip
        return self._parse(Token, response)

    def me(self) -> User:
        return self._parse(User, self._request("GET", "/api/v1/auth/me"))

    # --- videos -----------------------------------------------------------------------------

    def create_video(
        self, *, title: str, filename: str, content_type: str, size: int
    ) -> VideoCreated:
        body = {"title": title, "filename": filename, "contentType": content_type, "size": size}
        return self._parse(VideoCreated, self._request("POST", "/api/v1/videos", json=body))

    def video(self, video_id: str) -> Video:
        return self._parse(Video, self._request("GET", f"/api/v1/videos/{video_id}"))

    def videos(self, *, phase: str | None = None, page: int = 1,
               page_size: int = MAX_PAGE_SIZE) -> VideoPage:  # fmt: skip
        params: dict[str, str | int] = {"page": page, "pageSize": page_size}
        if phase:
            params["phase"] = phase
        return self._parse(VideoPage, self._request("GET", "/api/v1/videos", params=params))

    def all_videos(self, *, phase: str | None = None) -> Iterator[Video]:
        """Every page of my videos, newest first."""
        page = 1
        while True:
            answer = self.videos(phase=phase, page=page)
            yield from answer.items
            if not answer.items or page * answer.page_size >= answer.total:
                return
            page += 1

    def delete(self, video_id: str) -> None:
        self._request("DELETE", f"/api/v1/videos/{video_id}")

    def complete(self, video_id: str) -> Video:
        """The file is uploaded: the API checks it (422 if rejected) and starts the transcode."""
        return self._parse(Video, self._request("POST", f"/api/v1/videos/{video_id}/complete"))

    def cancel(self, video_id: str) -> Video:
        """Stop the transcode (409 if it has ended); the video stays and can be retried."""
        return self._parse(Video, self._request("POST", f"/api/v1/videos/{video_id}/cancel"))

    def retry(self, video_id: str) -> Video:
        """Run again what failed or was cancelled (409 otherwise)."""
        return self._parse(Video, self._request("POST", f"/api/v1/videos/{video_id}/retry"))

    def playback(self, video_id: str) -> Playback:
        return self._parse(Playback, self._request("GET", f"/api/v1/videos/{video_id}/playback"))

    # --- multipart uploads ------------------------------------------------------------------

    def part_urls(self, video_id: str, numbers: list[int]) -> list[PartUrl]:
        """Presigned URLs to PUT these parts (asked for in batches the API accepts)."""
        urls: list[PartUrl] = []
        for start in range(0, len(numbers), MAX_PARTS_PER_REQUEST):
            batch = numbers[start : start + MAX_PARTS_PER_REQUEST]
            response = self._request("POST", f"/api/v1/videos/{video_id}/upload/parts",
                                     json={"partNumbers": batch})  # fmt: skip
            urls += self._parse(PartUrls, response).parts
        return urls

    def uploaded_parts(self, video_id: str) -> UploadedParts:
        """The parts S3 already has, or `completed` when it has assembled them already."""
        response = self._request("GET", f"/api/v1/videos/{video_id}/upload/parts")
        return self._parse(UploadedParts, response)

    def complete_multipart(self, video_id: str, parts: list[UploadedPart]) -> None:
        body = {"parts": [{"partNumber": p.part_number, "etag": p.etag} for p in parts]}
        self._request("POST", f"/api/v1/videos/{video_id}/upload/complete", json=body)
