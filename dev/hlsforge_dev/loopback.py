"""Local servers on loopback: free ports, waiting for a listener, SecantusDB's and Redis's
command lines, and a Redis. Shared by `make dev`, the tests and the benchmarks."""

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def listening(command: list[str], port: int) -> Iterator[None]:
    """A server process that listens on `port` on loopback, from when it does until the
    context ends (then terminated)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def redis_command(port: int, password: str | None = None) -> list[str]:
    """Debian's `redis-server` (`make system-deps`) on loopback, keeping nothing on disk."""
    auth = [] if password is None else ["--requirepass", password]
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning", *auth]  # fmt: skip


@contextlib.contextmanager
def redis_server(port: int | None = None, password: str | None = None) -> Iterator[str]:
    """A Redis (`redis_command`) for as long as the context lasts; yields its URL (with the
    password, if it requires one)."""
    port = port or free_port()
    with listening(redis_command(port, password), port):
        yield f"redis://{'' if password is None else f':{password}@'}127.0.0.1:{port}/0"
