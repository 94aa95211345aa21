"""The cluster-wide queue: which waiting rungs get the free Job slots (pure)."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class WaitingRung:
    """A rung with no Job yet. Ordering: higher priority, then older resource, then ladder order."""

    sort_key: tuple[int, str, str, str, int]
    namespace: str
    resource: str
    rendition: str
    job_name: str

    @classmethod
    def of(
        cls, *, namespace: str, resource: str, priority: int, created: str, index: int,
        rendition: str, job_name: str,
    ) -> "WaitingRung":  # fmt: skip
        return cls((-priority, created, namespace, resource, index), namespace, resource,
                   rendition, job_name)  # fmt: skip


def rungs_to_start(waiting: Iterable[WaitingRung], running: int, limit: int) -> list[WaitingRung]:
    """The first `limit - running` rungs in queue order."""
    return sorted(waiting)[: max(0, limit - running)]
