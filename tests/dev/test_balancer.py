"""The loopback round-robin balancer of `make dev --replicas N`: one connection per backend in
turn, past a dead one, closing both sides together, and nothing left behind on exit."""

import gc
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hlsforge_dev.balancer import Address, Balancer, round_robin
from hlsforge_dev.loopback import free_port


@contextmanager
def http_server(name: str) -> Iterator[Address]:
    """A real HTTP server on loopback that answers every GET with its name."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name=f"http-{name}")
    thread.start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def listener() -> Iterator[socket.socket]:
    """A bare TCP backend: the test accepts and reads itself."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(5)
        yield sock


def url(balancer: Balancer) -> str:
    host, port = balancer.address
    return f"http://{host}:{port}/"


def names(balancer: Balancer, count: int) -> list[str]:
    """`count` requests, each on a new connection (httpx.get keeps none)."""
    return [httpx.get(url(balancer), timeout=5).text for _ in range(count)]


def test_connections_take_turns_between_the_backends() -> None:
    with http_server("a") as a, http_server("b") as b, round_robin("127.0.0.1", 0, [a, b]) as lb:
        assert names(lb, 4) == ["a", "b", "a", "b"]


def test_a_dead_backend_is_skipped_and_the_connections_still_succeed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = ("127.0.0.1", free_port())  # nothing listens: connecting is refused
    with http_server("a") as a, round_robin("127.0.0.1", 0, [dead, a]) as lb:
        assert names(lb, 3) == ["a", "a", "a"]
    said = [r for r in caplog.records if r.name == "hlsforge_dev.balancer"]
    assert [r.getMessage().split(" (")[0] for r in said] == [
        f"127.0.0.1:{dead[1]} is down"  # said once, not on every connection
    ]
    with ExitStack() as b_running, http_server("a") as a:
        b = b_running.enter_context(http_server("b"))
        with round_robin("127.0.0.1", 0, [a, b]) as lb:
            assert names(lb, 2) == ["a", "b"]
            b_running.close()  # b goes away, as a killed API process does
            assert names(lb, 4) == ["a", "a", "a", "a"]


def test_with_every_backend_down_a_connection_is_closed_at_once() -> None:
    dead = [("127.0.0.1", free_port()), ("127.0.0.1", free_port())]
    closed_or_reset = (httpx.RemoteProtocolError, httpx.ReadError)  # reset: the request unread
    with round_robin("127.0.0.1", 0, dead) as lb, pytest.raises(closed_or_reset):
        httpx.get(url(lb), timeout=5)


def test_a_client_closing_mid_stream_closes_the_backend_side_and_vice_versa() -> None:
    with listener() as backend, round_robin("127.0.0.1", 0, [backend.getsockname()]) as lb:
        with socket.create_connection(lb.address, timeout=5) as client:
            client.sendall(b"hello")
            accepted, _ = backend.accept()
            with accepted:
                accepted.settimeout(5)
                assert accepted.recv(5) == b"hello"
                accepted.sendall(b"half a resp")
                assert client.recv(11) == b"half a resp"
                client.close()
                assert accepted.recv(1) == b""  # EOF: the balancer closed its side too

        with socket.create_connection(lb.address, timeout=5) as client:
            accepted, _ = backend.accept()
            accepted.sendall(b"bye")
            accepted.close()
            assert client.recv(3) == b"bye"  # what was sent before the close arrives
            assert client.recv(1) == b""


def test_on_exit_nothing_keeps_running_or_listening() -> None:
    with listener() as backend:
        with round_robin("127.0.0.1", 0, [backend.getsockname()]) as lb:
            address = lb.address
            client = socket.create_connection(address, timeout=5)
            accepted, _ = backend.accept()
            accepted.settimeout(5)
            client.sendall(b"open")
            assert accepted.recv(4) == b"open"  # a connection in the middle of a stream
        with client, accepted:
            assert client.recv(1) == b""  # closed by the balancer on exit, both sides
            assert accepted.recv(1) == b""
    assert not [t.name for t in threading.enumerate() if t.name.startswith("balancer")]
    with socket.socket() as probe:
        assert probe.connect_ex(address) != 0  # nothing listens there any more
    gc.collect()  # an unclosed socket or transport would warn here (warnings are errors)
