"""Local servers on loopback: free ports, waiting for a listener, and SecantusDB's command
line. Shared by `make dev`, the tests and the benchmarks."""

import socket
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def secantus_command(port: int, storage: str = ":memory:") -> list[str]:
    """SecantusDB (a MongoDB-compatible server) on loopback; `storage` is a directory or
    `:memory:`."""
    server = Path(sys.executable).parent / "secantusd-py"
    return [str(server), "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage,
            "--log-level", "WARNING"]  # fmt: skip
