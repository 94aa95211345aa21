"""Where the sign-in lives: `$HLSFORGE_CONFIG_DIR/credentials.json`, by default
`~/.config/hlsforge/credentials.json` (honouring `$XDG_CONFIG_HOME`), readable by its owner
only (0600). It holds the API's URL, the email and the access token, never the password."""

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

FILENAME = "credentials.json"


class NotSignedInError(Exception):
    """No usable sign-in: run `hlsforge login`."""


@dataclass(frozen=True)
class Credentials:
    api_url: str
    email: str
    token: str
    expires_at: str  # ISO 8601, UTC

    @classmethod
    def issued(cls, *, api_url: str, email: str, token: str, expires_in: int) -> "Credentials":
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
        return cls(api_url=api_url.rstrip("/"), email=email, token=token,
                   expires_at=expires_at.isoformat(timespec="seconds"))  # fmt: skip

    @property
    def expired(self) -> bool:
        return datetime.fromisoformat(self.expires_at) <= datetime.now(UTC)

    def __repr__(self) -> str:  # never show the token, even in a traceback
        return f"Credentials(api_url={self.api_url!r}, email={self.email!r}, token=<hidden>)"


def config_dir() -> Path:
    if explicit := os.environ.get("HLSFORGE_CONFIG_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "hlsforge"


def credentials_path() -> Path:
    return config_dir() / FILENAME


def save(credentials: Credentials) -> Path:
    """Write atomically, created 0600 (never readable by others, not even for a moment)."""
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(asdict(credentials), file, indent=2)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def load() -> Credentials:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
        credentials = Credentials(**{key: str(data[key]) for key in
                                     ("api_url", "email", "token", "expires_at")})  # fmt: skip
        expired = credentials.expired
    except FileNotFoundError:
        raise NotSignedInError("not signed in: run `hlsforge login`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NotSignedInError(f"cannot read {path} ({exc}): run `hlsforge login`") from None
    if expired:
        raise NotSignedInError(f"the sign-in of {credentials.email} has expired: run "
                               "`hlsforge login`")  # fmt: skip
    return credentials


def remove() -> bool:
    """Forget the sign-in; False if there was none."""
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True
