"""`/api/v1/auth`: register, sign in, who am I."""

import json

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from transcode_api.context import AppContext
from transcode_api.deps import Context, CurrentUser
from transcode_api.errors import ConflictError
from transcode_api.models import ERROR_RESPONSES, LoginRequest, Token, UserCreate, UserPublic
from transcode_api.ratelimits import login_limits, registration_limit
from transcode_api.repository import EmailTakenError
from transcode_api.routing import StrictJsonRoute
from transcode_api.security import hash_password, verify_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=ERROR_RESPONSES,
                   route_class=StrictJsonRoute)  # fmt: skip

_FORM_SCHEMA = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string", "description": "your email"},
                   "password": {"type": "string", "format": "password"}},
}  # fmt: skip
_LOGIN_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": LoginRequest.model_json_schema(by_alias=True)},
        "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
    },
}


@router.post("/register", status_code=status.HTTP_201_CREATED)
def register(body: UserCreate, ctx: Context, request: Request) -> UserPublic:
    """Create an account (every account is an ordinary user)."""
    ctx.limits.take(registration_limit(ctx.settings), _client_address(request))
    try:
        user = ctx.repo.create_user(
            email=str(body.email), password_hash=hash_password(body.password), name=body.name
        )
    except EmailTakenError as exc:
        raise ConflictError("an account with this email already exists") from exc
    return UserPublic.from_record(user)


async def _login_request(request: Request) -> LoginRequest:
    """JSON `{email, password}`, or the OAuth2 password form (`username`, `password`)."""
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            given = await request.json()
        else:
            async with request.form() as form:  # closes any file a multipart form brought
                given = {"email": form.get("username"), "password": form.get("password")}
        return LoginRequest.model_validate(given)
    except json.JSONDecodeError as exc:
        invalid = {"type": "json_invalid", "loc": ("body",), "msg": "", "ctx": {"error": exc.msg}}
        raise RequestValidationError([invalid]) from None
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _client_address(request: Request) -> str:
    """The peer, or the client a trusted proxy names (`main.create_app`)."""
    return request.client.host if request.client else "unknown"


def _authenticate(ctx: AppContext, body: LoginRequest, address: str) -> Token:
    email = str(body.email).lower()
    per_address, per_account = login_limits(ctx.settings)
    attempts = [ctx.limits.take(per_address, address), ctx.limits.take(per_account, email)]
    user = ctx.repo.credentials(email)
    # An unknown email is checked against a dummy hash too, so it takes as long to refuse.
    if not verify_password(body.password, user.password_hash if user else None) or user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "incorrect email or password",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    ctx.limits.give_back(*attempts)  # only failures count
    seconds = ctx.settings.jwt_expiry_minutes * 60
    return Token(access_token=ctx.tokens.access_token(user.id, seconds), expires_in=seconds)


@router.post("/login", openapi_extra={"requestBody": _LOGIN_BODY})
async def login(request: Request, ctx: Context) -> Token:
    """Exchange email and password for an access token."""
    body = await _login_request(request)
    return await run_in_threadpool(_authenticate, ctx, body, _client_address(request))


@router.get("/me")
def me(user: CurrentUser) -> UserPublic:
    """The signed-in user."""
    return UserPublic.from_record(user)
