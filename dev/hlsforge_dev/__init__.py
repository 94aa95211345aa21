"""hlsforge on one machine: an emulated Kubernetes API server and a Job runner.

`EmulatedCluster` serves the Kubernetes API on loopback (built-in kinds and `VideoTranscode`)
for Kopf, the `kubernetes` client and kubectl; `JobRunner` plays the Job controller and the
kubelet, running each Job's container as a local process. Used by the tests and `make dev`.
"""

from hlsforge_dev.cluster import CRDS, JOBS, PODS, SECRETS, VIDEOTRANSCODES, EmulatedCluster
from hlsforge_dev.jobs import JobRunner, PodExit, PodRun, RunPod, completes_at_once
from hlsforge_dev.store import ApiError, Body, ResourceType

__all__ = [
    "CRDS",
    "JOBS",
    "PODS",
    "SECRETS",
    "VIDEOTRANSCODES",
    "ApiError",
    "Body",
    "EmulatedCluster",
    "JobRunner",
    "PodExit",
    "PodRun",
    "ResourceType",
    "RunPod",
    "completes_at_once",
]
