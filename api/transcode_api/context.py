"""The clients the API works with, created once at startup and passed to every request."""

from dataclasses import dataclass

from transcode_api.kube import Kube
from transcode_api.ratelimits import RateLimits
from transcode_api.repository import Repository
from transcode_api.security import TokenIssuer
from transcode_api.settings import ApiSettings
from transcode_api.storage import Storage


@dataclass(frozen=True)
class AppContext:
    settings: ApiSettings
    repo: Repository
    storage: Storage
    kube: Kube
    tokens: TokenIssuer
    limits: RateLimits
