"""The API's calls to the Kubernetes API: create, annotate, delete and check
`VideoTranscode`s."""

import os
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from videotranscode import GROUP, PLURAL, VERSION

CONFLICT = 409
NOT_FOUND = 404


def api_client(kubeconfig: str | None) -> kubernetes.client.ApiClient:
    """A kubeconfig when given, else in-cluster credentials, else `$KUBECONFIG`."""
    configuration = kubernetes.client.Configuration()
    if kubeconfig is None:
        try:
            kubernetes.config.load_incluster_config(configuration)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubeconfig = os.environ.get("KUBECONFIG")  # the package reads it only at import
        else:
            return kubernetes.client.ApiClient(configuration)
    kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration
    )
    return kubernetes.client.ApiClient(configuration)


class Kube:
    def __init__(self, client: kubernetes.client.ApiClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.custom = kubernetes.client.CustomObjectsApi(client)

    def create_transcode(self, body: dict[str, Any]) -> bool:
        """Create it unless it exists; True when this call created it."""
        try:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )
        except ApiException as exc:
            if exc.status == CONFLICT:
                return False
            raise
        return True

    def patch_transcode(self, name: str, patch: dict[str, Any]) -> bool:
        """Merge-patch it; False when it does not exist."""
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, patch
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return False
            raise
        return True

    def delete_transcode(self, name: str) -> None:
        """Delete it and, in the background, its Jobs and pods (owner references)."""
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise

    def check(self) -> None:
        """Raises unless the API server answers and lets us list our resources."""
        self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, limit=1, _request_timeout=5
        )

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]
