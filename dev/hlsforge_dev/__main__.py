"""`python -m hlsforge_dev`: an emulated cluster and Job runner until Ctrl-C (for `make dev`)."""

import argparse
import signal
import threading
from pathlib import Path

from hlsforge_dev import EmulatedCluster, JobRunner


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m hlsforge_dev", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--kubeconfig", type=Path, default=Path("out/dev/kubeconfig"))
    parser.add_argument("--crd", type=Path, action="append", default=[], help="CRD YAML to apply")
    parser.add_argument("--max-parallel", type=int, default=4, help="pods running at once")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmulatedCluster(port=args.port) as cluster:
        for path in args.crd:
            cluster.apply_crds(path)
        kubeconfig = cluster.write_kubeconfig(args.kubeconfig)
        with JobRunner(cluster, max_parallel=args.max_parallel):
            print(f"API server {cluster.url}; export KUBECONFIG={kubeconfig.resolve()}", flush=True)
            stop.wait()


if __name__ == "__main__":
    main()
