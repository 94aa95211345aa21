"""API settings, read once at startup from `HLSFORGE_*` environment variables.

S3 credentials come from the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` variables.
"""

import ipaddress
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from videotranscode import SOURCE_CONTENT_TYPES

PLACEHOLDER_SECRETS = {"", "changethis", "changeme", "secret", "dev", "test"}
MIN_SECRET_LENGTH = 32
MiB = 1024 * 1024

DEFAULT_CONTENT_TYPES = list(dict.fromkeys(SOURCE_CONTENT_TYPES.values()))  # once each, in order


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HLSFORGE_", env_nested_delimiter="__")

    dev_mode: bool = False  # allows placeholder secrets; never set it in a cluster

    # Tokens
    jwt_secret: SecretStr = SecretStr("changethis")
    jwt_algorithm: str = Field(default="HS256", pattern=r"^HS(256|384|512)$")
    jwt_issuer: str = "hlsforge"
    jwt_audience: str = "hlsforge-api"
    jwt_expiry_minutes: int = Field(default=60 * 24, ge=1, le=60 * 24 * 30)
    service_token: SecretStr | None = None  # the operator's token for the /internal namespace

    # Data
    mongodb_uri: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongodb_database: str = "hlsforge"
    # Socket.IO across API replicas: events any replica receives reach clients on every one
    # (redis://[:password@]host:port/db). None: one replica, rooms in its own memory.
    redis_url: SecretStr | None = None

    # Storage: the API calls S3 at the internal endpoint and signs URLs for the public one
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None  # what browsers reach; default: the same
    s3_region: str = "us-east-1"
    upload_bucket: str = "uploads"
    media_bucket: str = "media"
    public_base_url: str | None = None  # outputs served by a public CDN: plain playback URLs

    # Uploads
    max_upload_bytes: int = Field(default=20 * 1024 * MiB, ge=1)
    multipart_threshold_bytes: int = Field(default=100 * MiB, ge=5 * MiB)
    multipart_part_bytes: int = Field(default=16 * MiB, ge=5 * MiB, le=5 * 1024 * MiB)
    allowed_content_types: list[str] = DEFAULT_CONTENT_TYPES
    max_pending_uploads: int = Field(default=20, ge=1)  # per user, awaiting upload at once
    upload_url_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    playback_url_seconds: int = Field(default=4 * 3600, ge=60, le=7 * 24 * 3600)

    # Kubernetes: where VideoTranscodes are created
    namespace: str = "default"
    kubeconfig: str | None = None  # default: in-cluster service account, else $KUBECONFIG
    transcode_priority: int = 0

    # Brute force: fixed windows, counted in MongoDB (shared by every replica)
    login_failures_per_account: int = Field(default=10, ge=1)
    login_failures_per_address: int = Field(default=100, ge=1)
    login_window_seconds: int = Field(default=15 * 60, ge=1)
    registrations_per_address: int = Field(default=20, ge=1)
    registration_window_seconds: int = Field(default=3600, ge=1)

    # HTTP
    max_body_bytes: int = Field(default=MiB, ge=1024)  # JSON and form bodies; uploads go to S3
    # Proxies (IPs or CIDRs) whose X-Forwarded-For and X-Forwarded-Proto are believed, e.g. the
    # ingress controller's pods; otherwise a client's address is the connection's peer.
    trusted_proxies: list[str] = []
    cors_origins: list[str] = []
    log_level: str = "INFO"

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            ipaddress.ip_network(proxy, strict=False)  # ValueError: not an IP or a CIDR
        return proxies

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.multipart_part_bytes > self.multipart_threshold_bytes:
            raise ValueError("multipart_part_bytes must not exceed multipart_threshold_bytes")
        if self.dev_mode:
            return self
        # RFC 7518 §3.2: an HMAC key at least as long as the hash (HS512: 64 bytes)
        jwt_minimum = max(MIN_SECRET_LENGTH, int(self.jwt_algorithm[2:]) // 8)
        for name, minimum in (("jwt_secret", jwt_minimum), ("service_token", MIN_SECRET_LENGTH)):
            value: SecretStr | None = getattr(self, name)
            if value is None:
                continue
            secret = value.get_secret_value()
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < minimum:
                raise ValueError(
                    f"HLSFORGE_{name.upper()} must be a random value of at least {minimum} "
                    "characters (set HLSFORGE_DEV_MODE=true only on a development machine)"
                )
        return self
