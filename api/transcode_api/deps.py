"""FastAPI dependencies: the app's clients and the signed-in user."""

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import OAuth2PasswordBearer

from transcode_api.context import AppContext
from transcode_api.models import MAX_PAGE_SIZE, VIDEO_ID_PATTERN
from transcode_api.playback import PlaylistUrl
from transcode_api.records import UserRecord
from transcode_api.security import InvalidTokenError

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


def current_user(ctx: Context, token: Annotated[str | None, Depends(_bearer)]) -> UserRecord:
    """The user of a valid access token; 401 for a missing, bad or expired one."""
    if token is None:
        raise _unauthorized("not authenticated")
    try:
        user_id = ctx.tokens.user_id(token)
    except InvalidTokenError as exc:
        raise _unauthorized("invalid or expired token") from exc
    user = ctx.repo.user_by_id(user_id)
    if user is None:
        raise _unauthorized("invalid or expired token")
    return user


CurrentUser = Annotated[UserRecord, Depends(current_user)]
PageNumber = Annotated[int, Query(ge=1, le=10_000)]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)]
VideoId = Annotated[str, Path(pattern=VIDEO_ID_PATTERN, description="24 hex characters")]


def playlist_url(request: Request) -> PlaylistUrl:
    """Absolute URLs of the playlists behind a playback token, as this request reached us."""
    return lambda token, path: str(request.url_for("playlist", token=token, path=path))
