"""A round-robin TCP proxy on loopback, as a Service spreads connections over pods: each
connection goes to the next backend, or, if that one refuses, to the one after (so killing one
API process leaves the app working). Bytes are piped both ways untouched, so HTTP keep-alive
and WebSocket upgrades work; when either side ends, both are closed."""

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
from collections.abc import Iterator, Sequence

Address = tuple[str, int]
TIMEOUT = 5.0  # to connect (a SIGSTOPped backend's kernel still accepts), and to flush on close
logger = logging.getLogger(__name__)


class Balancer:
    """An asyncio server in a thread of its own; use `round_robin`."""

    def __init__(self, host: str, port: int, backends: Sequence[Address]) -> None:
        if not backends:
            raise ValueError("a balancer needs at least one backend")
        self.backends = list(backends)
        self._turns = itertools.cycle(self.backends)
        self._down: set[Address] = set()  # to log each backend's fall and return once
        self._connections: set[asyncio.Task[None]] = set()
        self._socket = socket.create_server((host, port))  # bound here: errors show at once
        self.address: Address = self._socket.getsockname()[:2]
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name=f"balancer-{self.address[1]}",
                                        daemon=True)  # fmt: skip

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._loop.close()

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._handle, sock=self._socket)
        await self._stop.wait()
        server.close()
        await asyncio.sleep(0)  # connections accepted just now start, and register
        for connection in self._connections:
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _handle(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:  # fmt: skip
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if (backend := await self._connect()) is not None:
                backend_reader, backend_writer = backend
                try:
                    await _pipe_both_ways(client_reader, client_writer, backend_reader,
                                          backend_writer)  # fmt: skip
                finally:
                    await _close(backend_writer)
        except asyncio.CancelledError:
            pass  # the balancer stops; asyncio's streams would log a cancelled handler
        finally:
            await _close(client_writer)
            self._connections.discard(task)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The next backend that accepts, trying each once; None when all refuse."""
        for _ in self.backends:
            backend = next(self._turns)
            try:
                connection = await asyncio.wait_for(asyncio.open_connection(*backend),
                                                    TIMEOUT)  # fmt: skip
            except OSError as exc:  # refused, or TimeoutError
                if backend not in self._down:
                    self._down.add(backend)
                    logger.warning("%s:%d is down (%s); trying the others", *backend, exc)
                continue
            if backend in self._down:
                self._down.discard(backend)
                logger.warning("%s:%d is back", *backend)
            return connection
        return None


async def _pipe_both_ways(
    a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader, b_writer: asyncio.StreamWriter,
) -> None:  # fmt: skip
    """Until either direction ends (EOF or error); the other is then cancelled."""
    pipes = [asyncio.create_task(_pipe(a_reader, b_writer)),
             asyncio.create_task(_pipe(b_reader, a_writer))]  # fmt: skip
    try:
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    """Flush and close; a peer that reads nothing more gets the connection reset instead."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)
    except TimeoutError:
        writer.transport.abort()
    except ConnectionError:
        pass


@contextlib.contextmanager
def round_robin(host: str, port: int, backends: Sequence[Address]) -> Iterator[Balancer]:
    """A balancer listening on `host:port` (0: a free port, see `.address`) for as long as the
    context lasts; on exit every connection through it is closed and its thread ends."""
    balancer = Balancer(host, port, backends)
    balancer.start()
    try:
        yield balancer
    finally:
        balancer.stop()
