"""Domain errors. Each becomes one HTTP status at the boundary (`main.py`):

ApiError
├── NotFoundError            404  no such video for this user (or none at all)
├── ConflictError            409  the video is not in a state that allows this
├── RejectedError            422  the request or the uploaded file is unacceptable
├── TooManyError             429  a per-user limit is reached
│   └── RateLimitedError     429  too many attempts (ratelimits.py), with Retry-After
└── UnavailableError         503  a dependency (Kubernetes, S3) failed; retry later
"""


class ApiError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None  # e.g. Retry-After

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ApiError):
    status_code = 404


class ConflictError(ApiError):
    status_code = 409


class RejectedError(ApiError):
    status_code = 422


class TooManyError(ApiError):
    status_code = 429


class UnavailableError(ApiError):
    status_code = 503
