"""Operator settings, read once at startup from `HLSFORGE_*` environment variables."""

from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from transcode_operator.quantity import parse_quantity


def _quantity(text: str) -> str:
    parse_quantity(text)
    return text


Quantity = Annotated[str, AfterValidator(_quantity)]  # e.g. 20Gi, 5G, 512Mi


class ResourceTier(BaseModel):
    """Pod resources for rungs up to `max_height` (short side) pixels.

    Ephemeral storage (the scratch emptyDir counts against it) is the downloaded source, plus
    the rung's expected output (average bitrates x duration) times `output_headroom`, plus
    `scratch_base` for everything else (FFmpeg's log, the container's log)."""

    max_height: int
    cpu_request: str
    memory_request: str
    memory_limit: str
    cpu_limit: str | None = None
    scratch_base: Quantity = "1Gi"
    output_headroom: float = Field(default=1.5, ge=1)  # VBR overshoot, container overhead


DEFAULT_TIERS = [
    ResourceTier(max_height=540, cpu_request="500m", memory_request="512Mi", memory_limit="1Gi"),
    ResourceTier(max_height=1080, cpu_request="1", memory_request="1Gi", memory_limit="2Gi"),
    ResourceTier(max_height=4320, cpu_request="2", memory_request="2Gi", memory_limit="4Gi"),
]


class JobSettings(BaseModel):
    """Everything the Job builders need besides the resource itself."""

    image: str = "hlsforge/transcoder:latest"
    image_pull_policy: str = "IfNotPresent"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_secret_name: str = "hlsforge-s3"  # noqa: S105 (a Secret's name; keys accessKeyId, secretAccessKey)
    backoff_limit: int = Field(default=2, ge=0)
    active_deadline_seconds: int = Field(default=6 * 3600, ge=60)
    ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    max_duration_seconds: int = Field(default=4 * 3600, ge=1)
    resource_tiers: list[ResourceTier] = DEFAULT_TIERS
    probe_tier: ResourceTier = ResourceTier(
        max_height=0, cpu_request="250m", memory_request="256Mi", memory_limit="512Mi"
    )


class SlicingSettings(BaseModel):
    """How `spec.slicing: auto` splits renditions in time, and how wide a sliced Job runs."""

    auto_threshold_seconds: int = Field(default=120, ge=1)  # longer sources are sliced
    auto_seconds: int = Field(default=30, ge=1)  # rounded up to whole segments
    parallelism: int = Field(default=8, ge=1)  # slices of one rendition at once, at most


class LeaseSettings(BaseModel):
    """Leader election: replicas share one `coordination.k8s.io` Lease and only its holder
    runs. A standby takes over at most `duration_seconds` + `retry_seconds` after the holder's
    last renewal; a holder that cannot renew for `renew_deadline_seconds` stops at once, so it
    is gone before a standby may take over."""

    name: str = "hlsforge-operator"  # empty: no election (a single replica)
    namespace: str = "default"  # the chart sets the pod's own
    identity: str = ""  # the chart sets the pod's name; empty: this host's name and a random part
    duration_seconds: int = Field(default=8, ge=1)
    renew_seconds: float = Field(default=2, gt=0)
    renew_deadline_seconds: float = Field(default=6, gt=0)
    retry_seconds: float = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _renewed_in_time(self) -> Self:
        if not self.renew_seconds < self.renew_deadline_seconds < self.duration_seconds:
            raise ValueError("lease timings need renew < renew deadline < duration")
        return self


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HLSFORGE_", env_nested_delimiter="__")

    namespaces: list[str] = []  # empty: every namespace (cluster-wide)
    # Worker pods at once, cluster-wide: a sliced rendition's Job counts one per running slice.
    max_running_jobs: int = Field(default=4, ge=1)
    slicing: SlicingSettings = SlicingSettings()
    job: JobSettings = JobSettings()
    mongodb_uri: SecretStr | None = None
    mongodb_database: str = "hlsforge"
    api_url: str | None = None  # the API's base URL, for Socket.IO progress relays
    service_token: SecretStr | None = None  # accepted by the API's /internal namespace
    public_base_url: str | None = None  # plain playback URLs (a CDN); else the API signs them
    status_interval_seconds: float = 2.0
    # Where the liveness and metrics servers listen: every IPv4 address by default (what a
    # pod's probes and Prometheus reach); "::" on IPv6 clusters, 127.0.0.1 to keep them local.
    bind_address: str = "0.0.0.0"  # noqa: S104
    liveness_port: int = 8080
    metrics_port: int = 9090
    lease: LeaseSettings = LeaseSettings()
