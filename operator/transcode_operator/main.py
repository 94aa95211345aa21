"""`hlsforge-operator`: run the Kopf operator with hlsforge's settings."""

import kopf

from transcode_operator import handlers  # noqa: F401  (registers the handlers)
from transcode_operator.settings import OperatorSettings


def main() -> None:
    settings = OperatorSettings()
    kopf.configure(verbose=False)
    kopf.run(
        standalone=True,  # one replica (Recreate): no peering needed
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://0.0.0.0:{settings.liveness_port}/healthz",
    )
