"""Sending the file where the API said: one presigned form POST, or a multipart upload whose
parts are PUT to presigned URLs, several at a time, each with its own progress. A multipart
upload first asks the API which parts S3 already has and sends only the others, so running it
again after an interruption resumes it; when S3 has already assembled them, nothing is sent.

Storage requests go through their own httpx client: the API's bearer token never reaches S3.
"""

import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import httpx

from hlsforge_cli.client import ApiClient
from hlsforge_cli.models import MultipartUpload, PostUpload, UploadedPart

__all__ = ["UploadError", "UploadListener", "multipart_upload", "post_upload"]

CHUNK = 256 * 1024
URL_BATCH = 20  # part URLs asked for at a time, so they are fresh when used


class UploadError(Exception):
    """The storage refused the upload or could not be reached, after retries. `rejected`:
    the storage refused the direct POST's policy (the file's size or type), which no retry
    can change."""

    def __init__(self, message: str, *, rejected: bool = False) -> None:
        super().__init__(message)
        self.rejected = rejected


class UploadListener(Protocol):
    """Told how an upload goes; called from several threads at once."""

    def begin(self, *, total: int, parts: int, done_parts: int, done_bytes: int) -> None:
        """`parts` is 1 for a form POST; `done_*` were uploaded before (a resumed upload)."""

    def sent(self, part: int, size: int, sent: int) -> None:
        """`sent` of the `size` bytes of `part` are on their way (0 again after a retry)."""

    def part_done(self, part: int) -> None: ...

    def end(self) -> None: ...


def storage_client(timeout: float = 60) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=15), follow_redirects=False)


def retrying(
    send: Callable[[int], httpx.Response], *, what: str, attempts: int, backoff: float,
    stop: threading.Event | None = None, form_post: bool = False,
) -> httpx.Response:  # fmt: skip
    """`send(attempt)` until it gets a 2xx; transport errors and 5xx are retried, after
    `backoff` seconds, then twice as long each time, unless `stop` is set meanwhile. A 403 is
    retried too (maybe an expired URL; a new one may work), except for a `form_post`: there
    every 4xx is S3 refusing the policy (the file's size or type), and `rejected`."""
    stop = stop or threading.Event()
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            response = send(attempt)
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                return response
            status = response.status_code
            problem = f"the storage answered {status}: {response.text[:300]}"
            if form_post and status < 500:
                raise UploadError(f"{what} was refused: {problem}", rejected=True)
            if status < 500 and status != 403:
                break
        if attempt < attempts and stop.wait(backoff * 2 ** (attempt - 1)):
            break
    raise UploadError(f"{what} failed: {problem}")


class _ProgressReader:
    """A file as httpx reads it for a form POST, reporting each read."""

    def __init__(self, file: BinaryIO, size: int, report: Callable[[int], None]) -> None:
        self._file, self._size, self._report = file, size, report

    def read(self, count: int = -1) -> bytes:
        data = self._file.read(count)
        self._report(self._file.tell())
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._file.seek(offset, whence)
        self._report(min(position, self._size))
        return position

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()


def post_upload(
    storage: httpx.Client, path: Path, ticket: PostUpload, *, content_type: str,
    listener: UploadListener, attempts: int = 3, backoff: float = 1.0,
) -> None:  # fmt: skip
    """The policy's fields first, then the file as `file`: what S3's form POST wants."""
    size = path.stat().st_size
    listener.begin(total=size, parts=1, done_parts=0, done_bytes=0)
    with path.open("rb") as file:
        reader = _ProgressReader(file, size, lambda sent: listener.sent(1, size, sent))

        def send(_: int) -> httpx.Response:
            file.seek(0)
            files = {"file": (path.name, cast("BinaryIO", reader), content_type)}
            return storage.post(ticket.url, data=ticket.fields, files=files)

        retrying(send, what="the upload", attempts=attempts, backoff=backoff, form_post=True)
    listener.part_done(1)
    listener.end()


@dataclass
class _Multipart:
    client: ApiClient
    storage: httpx.Client
    path: Path
    video_id: str
    size: int
    part_size: int
    listener: UploadListener
    attempts: int
    backoff: float
    stop: threading.Event

    def span(self, number: int) -> tuple[int, int]:
        offset = (number - 1) * self.part_size
        return offset, min(self.part_size, self.size - offset)

    def chunks(self, number: int) -> Iterator[bytes]:
        offset, size = self.span(number)
        sent = 0
        self.listener.sent(number, size, 0)
        with self.path.open("rb") as file:
            file.seek(offset)
            while sent < size:
                if self.stop.is_set():
                    raise UploadError("stopped")
                data = file.read(min(CHUNK, size - sent))
                if not data:
                    raise UploadError(f"{self.path} is shorter than {self.size} bytes")
                sent += len(data)
                self.listener.sent(number, size, sent)
                yield data

    def fresh_url(self, number: int) -> str:
        """A new URL for a retry: the first one may have expired."""
        return self.client.part_urls(self.video_id, [number])[0].url

    def put(self, number: int, url: str) -> UploadedPart:
        _, size = self.span(number)

        def send(attempt: int) -> httpx.Response:
            part_url = url if attempt == 1 else self.fresh_url(number)
            return self.storage.put(part_url, content=self.chunks(number),
                                    headers={"Content-Length": str(size)})  # fmt: skip

        response = retrying(send, what=f"part {number}", attempts=self.attempts,
                            backoff=self.backoff, stop=self.stop)  # fmt: skip
        etag = response.headers.get("ETag")
        if not etag:
            raise UploadError(f"part {number}: the storage answered without an ETag")
        self.listener.part_done(number)
        return UploadedPart(part_number=number, etag=etag, size=size)


def multipart_upload(
    client: ApiClient, storage: httpx.Client, path: Path, video_id: str,
    ticket: MultipartUpload, *, listener: UploadListener, workers: int = 4, attempts: int = 3,
    backoff: float = 1.0,
) -> None:  # fmt: skip
    """Upload the parts S3 does not have yet, then assemble them (unless S3 already has)."""
    size = path.stat().st_size
    if math.ceil(size / ticket.part_size) != ticket.part_count:
        raise UploadError(f"{path} ({size} bytes) does not match the upload's "
                          f"{ticket.part_count} parts of {ticket.part_size} bytes")  # fmt: skip
    job = _Multipart(client=client, storage=storage, path=path, video_id=video_id, size=size,
                     part_size=ticket.part_size, listener=listener, attempts=attempts,
                     backoff=backoff, stop=threading.Event())  # fmt: skip
    uploaded = client.uploaded_parts(video_id)
    if uploaded.completed:  # assembled by an earlier run
        listener.begin(total=size, parts=ticket.part_count, done_parts=ticket.part_count,
                       done_bytes=size)  # fmt: skip
        listener.end()
        return
    done = {part.part_number: part for part in uploaded.parts
            if part.size in (None, job.span(part.part_number)[1])}  # fmt: skip
    missing = [n for n in range(1, ticket.part_count + 1) if n not in done]
    listener.begin(total=size, parts=ticket.part_count, done_parts=len(done),
                   done_bytes=sum(job.span(n)[1] for n in done))  # fmt: skip
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="part") as pool:
        for start in range(0, len(missing), URL_BATCH):
            urls = client.part_urls(video_id, missing[start : start + URL_BATCH])
            futures = [pool.submit(job.put, url.part_number, url.url) for url in urls]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
                failed = [e for f in futures if f.done() and (e := f.exception()) is not None]
                if failed:
                    raise failed[0]
            except BaseException:  # a failed part, or Ctrl-C: stop the others quickly
                job.stop.set()
                for future in futures:
                    future.cancel()
                wait(futures)
                raise
            for future in futures:
                part = future.result()
                done[part.part_number] = part
    client.complete_multipart(video_id, [done[n] for n in sorted(done)])
    listener.end()
