"""Prometheus metrics of the operator, served on `HLSFORGE_METRICS_PORT` (/metrics)."""

from prometheus_client import Counter, Gauge, Histogram

JOBS_CREATED = Counter("hlsforge_jobs_created_total", "Jobs the operator created", ["role"])
PHASE_CHANGES = Counter(
    "hlsforge_phase_transitions_total", "VideoTranscode phase changes, by new phase", ["phase"]
)
TRANSCODE_SECONDS = Histogram(
    "hlsforge_transcode_seconds",
    "From the first reconcile to Succeeded, per VideoTranscode",
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)
ACTIVE = Gauge("hlsforge_operator_active", "1 on the replica that runs, 0 on a standby")
