"""Leases in the emulated API server, as the real one serves them: what leader election rests
on is that a create of an existing Lease and a replace at a stale resourceVersion both get
409, and that a Lease spec is validated (ValidateLeaseSpec). Sent as plain dicts: the
`kubernetes` package's own Lease model turns times into `isoformat()`, which drops the
microseconds a MicroTime must have whenever they are zero."""

from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException

NAMESPACE = "default"
WHERE = ("coordination.k8s.io", "v1", NAMESPACE, "leases")


class Leases:
    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self._api: Any = kubernetes.client.CustomObjectsApi(client)  # plain dicts

    def create(self, body: dict[str, Any]) -> Any:
        return self._api.create_namespaced_custom_object(*WHERE, body)

    def replace(self, body: dict[str, Any]) -> Any:
        name = body["metadata"]["name"]
        return self._api.replace_namespaced_custom_object(*WHERE, name, body)

    def read(self, name: str) -> Any:
        return self._api.get_namespaced_custom_object(*WHERE, name)


@pytest.fixture
def leases(api: kubernetes.client.ApiClient) -> Leases:
    return Leases(api)


def lease(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def status_of(call: Any, *args: Any) -> int:
    with pytest.raises(ApiException) as caught:
        call(*args)
    return int(caught.value.status)


def test_a_lease_is_created_once_and_replaced_only_at_its_current_version(leases: Leases) -> None:
    spec = {"holderIdentity": "a", "leaseDurationSeconds": 8,
            "renewTime": "2026-12-02T10:00:00.000000Z"}  # fmt: skip
    created = leases.create(lease("op", **spec))
    assert status_of(leases.create, lease("op", **spec)) == 409

    stale = created["metadata"]["resourceVersion"]
    taken = lease("op", **{**spec, "holderIdentity": "b"})
    taken["metadata"]["resourceVersion"] = stale
    assert leases.replace(taken)["spec"]["holderIdentity"] == "b"

    late = lease("op", **{**spec, "holderIdentity": "c"})
    late["metadata"]["resourceVersion"] = stale  # read before b's write
    assert status_of(leases.replace, late) == 409
    assert leases.read("op")["spec"] == {**spec, "holderIdentity": "b"}


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({"leaseDurationSeconds": 0}, 422),
        ({"leaseDurationSeconds": -5}, 422),
        ({"leaseTransitions": -1}, 422),
        ({"renewTime": "2026-12-02T10:00:00Z"}, 400),  # no microseconds: not a MicroTime
        ({"acquireTime": "yesterday"}, 400),
    ],
)
def test_an_invalid_lease_spec_is_refused(
    leases: Leases, spec: dict[str, Any], status: int
) -> None:
    assert status_of(leases.create, lease("op", **spec)) == status
    assert status_of(leases.read, "op") == 404
