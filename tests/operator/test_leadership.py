"""Leader election on a Lease (transcode_operator.leadership) against the emulated API
server: one holder at a time, a takeover only after a whole duration of silence, at once
after a release, and a holder that finds the Lease taken knows it has lost it."""

import asyncio
import datetime
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from hlsforge_dev import EmulatedCluster

from transcode_operator.leadership import Elector, LeaseApi, claimed, micro_time, released
from transcode_operator.settings import LeaseSettings

FAST = LeaseSettings(name="op", duration_seconds=2, renew_seconds=0.2,
                     renew_deadline_seconds=1, retry_seconds=0.1)  # fmt: skip
NOON = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def client(cluster: EmulatedCluster, tmp_path: Path) -> Iterator[kubernetes.client.ApiClient]:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    yield api
    api.close()


def elector(client: kubernetes.client.ApiClient, identity: str) -> Elector:
    return Elector(LeaseApi(client, FAST), FAST, identity)


def lease(cluster: EmulatedCluster) -> dict[str, Any]:
    return dict(cluster.get("coordination.k8s.io/v1/leases", "default", "op")["spec"])


def test_a_micro_time_always_has_six_fraction_digits() -> None:
    assert micro_time(NOON) == "2026-12-02T12:00:00.000000Z"
    later = NOON.replace(microsecond=42).astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert micro_time(later) == "2026-12-02T12:00:00.000042Z"


def test_a_renewal_keeps_the_acquire_time_and_a_takeover_counts_a_transition() -> None:
    first = claimed(None, "a", 8, NOON)
    assert first == {"holderIdentity": "a", "leaseDurationSeconds": 8, "leaseTransitions": 0,
                     "acquireTime": micro_time(NOON), "renewTime": micro_time(NOON)}  # fmt: skip
    later = NOON + datetime.timedelta(seconds=2)
    renewed = claimed(first, "a", 8, later)
    assert renewed == {**first, "renewTime": micro_time(later)}
    taken = claimed(renewed, "b", 8, later)
    assert taken["holderIdentity"] == "b"
    assert (taken["acquireTime"], taken["leaseTransitions"]) == (micro_time(later), 1)
    assert released(taken, later)["holderIdentity"] is None


def test_of_candidates_racing_for_a_new_lease_exactly_one_wins(
    client: kubernetes.client.ApiClient, cluster: EmulatedCluster
) -> None:
    electors = [elector(client, f"op-{i}") for i in range(6)]

    async def race() -> list[bool]:
        return await asyncio.gather(*(e._try_acquire_or_renew() for e in electors))

    assert sum(asyncio.run(race())) == 1
    assert lease(cluster)["holderIdentity"] in {e.identity for e in electors}


def test_a_standby_takes_over_only_after_a_whole_duration_without_renewal(
    client: kubernetes.client.ApiClient, cluster: EmulatedCluster
) -> None:
    active, standby = elector(client, "active"), elector(client, "standby")

    async def scenario() -> float:
        await active.acquire()
        holding = asyncio.create_task(active.hold())
        waiting = asyncio.create_task(standby.acquire())
        await asyncio.sleep(FAST.duration_seconds * 2)  # renewed all along: still a standby
        assert not waiting.done()
        holding.cancel()  # the active replica dies: no more renewals
        silent_since = time.monotonic()
        await waiting
        return time.monotonic() - silent_since

    waited = asyncio.run(scenario())
    assert FAST.duration_seconds - FAST.renew_seconds <= waited  # never before it may
    assert waited <= 2 * FAST.duration_seconds
    spec = lease(cluster)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("standby", 1)


def test_a_released_lease_is_taken_at_once(
    client: kubernetes.client.ApiClient, cluster: EmulatedCluster
) -> None:
    active, standby = elector(client, "active"), elector(client, "standby")

    async def scenario() -> float:
        await active.acquire()
        waiting = asyncio.create_task(standby.acquire())
        await asyncio.sleep(0.3)
        released_at = time.monotonic()
        await active.release()
        await waiting
        return time.monotonic() - released_at

    assert asyncio.run(scenario()) < FAST.duration_seconds / 2
    assert lease(cluster)["holderIdentity"] == "standby"


async def lost_after(active: Elector, disturb: Callable[[], None]) -> float:
    """Seconds from `disturb()` until `active`, holding the Lease, knows it has lost it."""
    await active.acquire()
    holding = asyncio.create_task(active.hold())
    await asyncio.sleep(0.3)
    disturb()
    disturbed_at = time.monotonic()
    await asyncio.wait_for(holding, timeout=10)
    return time.monotonic() - disturbed_at


def test_a_holder_whose_lease_is_taken_knows_it_has_lost_it(
    client: kubernetes.client.ApiClient, cluster: EmulatedCluster
) -> None:
    def take() -> None:
        spec = {**lease(cluster), "holderIdentity": "intruder", "leaseDurationSeconds": 60}
        cluster.patch("coordination.k8s.io/v1/leases", "default", "op", {"spec": spec})

    assert asyncio.run(lost_after(elector(client, "active"), take)) < FAST.duration_seconds
    assert lease(cluster)["holderIdentity"] == "intruder"  # the lost holder wrote nothing more


def test_a_holder_that_cannot_reach_the_api_gives_up_before_a_standby_could_take_over(
    client: kubernetes.client.ApiClient, cluster: EmulatedCluster
) -> None:
    # the renew deadline, counted from the last renewal, is shorter than the Lease's duration
    assert asyncio.run(lost_after(elector(client, "active"), cluster.stop)) < FAST.duration_seconds
