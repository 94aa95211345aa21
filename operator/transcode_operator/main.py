"""`hlsforge-operator`: run the Kopf operator with hlsforge's settings."""

import kopf

from transcode_operator import handlers  # noqa: F401  (registers the handlers)
from transcode_operator.settings import OperatorSettings


def liveness_endpoint(settings: OperatorSettings) -> str:
    """Kopf's liveness URL: the bind address (IPv6 in brackets) and the liveness port."""
    host = f"[{settings.bind_address}]" if ":" in settings.bind_address else settings.bind_address
    return f"http://{host}:{settings.liveness_port}/healthz"


def main() -> None:
    settings = OperatorSettings()
    kopf.configure(verbose=False)
    kopf.run(
        standalone=True,  # one replica (Recreate): no peering needed
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=liveness_endpoint(settings),
    )
