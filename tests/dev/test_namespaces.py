"""Deleting a namespace, as the namespace controller does it: `Terminating`, everything in it
deleted (finalizers still hold objects), no new content meanwhile, and gone once empty."""

import pytest
from hlsforge_dev import SECRETS, VIDEOTRANSCODES, EmulatedCluster
from hlsforge_dev.store import ApiError

NAMESPACES = "v1/namespaces"


def test_deleting_a_namespace_deletes_what_is_in_it_then_itself(cluster: EmulatedCluster) -> None:
    cluster.create(NAMESPACES, {"metadata": {"name": "media"}})
    cluster.create(SECRETS, {"metadata": {"name": "s"}, "stringData": {"a": "b"}},
                   namespace="media")  # fmt: skip
    held = {"metadata": {"name": "held", "finalizers": ["example.com/cleanup"]},
            "spec": {"source": {"url": "https://example.com/a.mp4"},
                     "output": {"bucket": "media", "prefix": "v"}}}  # fmt: skip
    cluster.create(VIDEOTRANSCODES, held, namespace="media")
    cluster.create(SECRETS, {"metadata": {"name": "elsewhere"}}, namespace="default")

    terminating = cluster.delete(NAMESPACES, None, "media")
    assert terminating["status"]["phase"] == "Terminating"
    assert cluster.find(SECRETS, "media", "s") is None
    assert cluster.get(VIDEOTRANSCODES, "media", "held")["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as refused:
        cluster.create(SECRETS, {"metadata": {"name": "late"}}, namespace="media")
    assert refused.value.code == 403

    cluster.patch(VIDEOTRANSCODES, "media", "held", {"metadata": {"finalizers": None}})
    assert cluster.find(VIDEOTRANSCODES, "media", "held") is None
    assert cluster.find(NAMESPACES, None, "media") is None
    assert cluster.find(SECRETS, "default", "elsewhere") is not None
