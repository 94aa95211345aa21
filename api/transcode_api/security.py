"""Passwords and tokens. One token check serves HTTP and Socket.IO.

Access tokens and playback tokens are JWTs signed with the same secret but for different
audiences, so neither can stand in for the other.
"""

import functools
import hmac
import time
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from transcode_api.settings import ApiSettings

PLAYBACK_AUDIENCE_SUFFIX = ":playback"
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the email is unknown, so both answers take the same time (made on first
    use: hashing is deliberately slow, and importing the module should not be)."""
    return _hasher.hash("an unused password")


class InvalidTokenError(Exception):
    """The token is missing, malformed, expired, tampered with or for someone else."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenIssuer:
    """Signs and checks this deployment's JWTs."""

    secret: str
    algorithm: str
    issuer: str
    audience: str

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> "TokenIssuer":
        return cls(
            secret=settings.jwt_secret.get_secret_value(),
            algorithm=settings.jwt_algorithm,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )

    def _sign(self, subject: str, audience: str, seconds: int) -> str:
        now = int(time.time())
        claims = {"sub": subject, "iss": self.issuer, "aud": audience,
                  "iat": now, "exp": now + seconds}  # fmt: skip
        return jwt.encode(claims, self.secret, algorithm=self.algorithm)

    def _check(self, token: str, audience: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[self.algorithm],  # never what the token's header asks for
                audience=audience,
                issuer=self.issuer,
                options={"require": ["sub", "iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise InvalidTokenError("token subject is not a string")
        return claims

    def access_token(self, user_id: str, seconds: int) -> str:
        return self._sign(user_id, self.audience, seconds)

    def user_id(self, token: object) -> str:
        """The user an access token was issued to; `InvalidTokenError` otherwise."""
        if not isinstance(token, str) or not token:
            raise InvalidTokenError("no token")
        return str(self._check(token, self.audience)["sub"])

    def playback_token(self, video_id: str, seconds: int) -> str:
        return self._sign(video_id, self.audience + PLAYBACK_AUDIENCE_SUFFIX, seconds)

    def playback_video_id(self, token: str) -> str:
        return str(self._check(token, self.audience + PLAYBACK_AUDIENCE_SUFFIX)["sub"])


def same_secret(given: object, expected: str) -> bool:
    """Constant-time comparison of a presented secret (e.g. the operator's token)."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())
