"""Hostile request bodies: malformed JSON and forms, error answers that repeat what was sent,
and bodies over the size limit. Each answer is a 4xx with a reason, never a 500, never a
traceback in the log and never the values that were sent."""

import json
import logging
import select
import socket
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from helpers import Api, Signup, serve

from transcode_api.main import create_app
from transcode_api.models import CompleteMultipartRequest
from transcode_api.settings import ApiSettings

VIDEOS = "/api/v1/videos"
MiB = 1024 * 1024
SENTINEL = "Sentinel-7f3a9"
GOOD_VIDEO = {"title": "t", "filename": "a.mp4", "contentType": "video/mp4", "size": 1000}

# Raw bodies Python's json module takes but JSON does not, or no JSON at all.
MALFORMED = {
    "NaN": b'{"size": NaN, "title": NaN}',
    "Infinity": b'{"size": Infinity, "partNumbers": [-Infinity]}',
    "1e309": b'{"size": 1e309, "partNumbers": [1e309], "title": 1e309}',
    "huge integer": b'{"size": ' + b"9" * 5000 + b"}",
    "lone surrogate": b'{"title": "\\ud800", "email": "\\udfff@example.com", '
    b'"password": "\\ud800"}',
    "surrogate key": b'{"\\ud800": 1}',
    "invalid UTF-8": b'{"title": "\xff\xfe", "email": "a\xc3@example.com", '
    b'"password": "\xed\xa0\x80"}',
    "deep nesting": b'{"parts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "not JSON": b"{'title': 'x'",
}


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """Records of errors and tracebacks from the server (uvicorn and the API), this test."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR or record.exc_info:
                records.append(record)

    handler = Collect()
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "transcode_api")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


def body_routes(client: httpx.Client) -> dict[str, tuple[str, str]]:
    """Every route that takes a body, with a real video of the user where it needs one."""
    created = client.post(VIDEOS, json=GOOD_VIDEO)
    multipart = client.post(VIDEOS, json=GOOD_VIDEO | {"size": 6 * MiB})
    assert created.status_code == multipart.status_code == 201
    video, big = created.json()["video"]["id"], multipart.json()["video"]["id"]
    return {
        "register": ("POST", "/api/v1/auth/register"),
        "login": ("POST", "/api/v1/auth/login"),
        "create": ("POST", VIDEOS),
        "update": ("PATCH", f"{VIDEOS}/{video}"),
        "part urls": ("POST", f"{VIDEOS}/{big}/upload/parts"),
        "complete parts": ("POST", f"{VIDEOS}/{big}/upload/complete"),
    }


def assert_field_errors(response: httpx.Response) -> None:
    """A 422 in the documented shape: a reason per error and nothing of the request."""
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert errors
    for error in errors:
        assert set(error) == {"loc", "msg", "type"}, error
        assert error["msg"]


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_json_is_a_422_with_a_reason(
    api: Api, signup: Signup, server_errors: list[logging.LogRecord], kind: str
) -> None:
    with api.client(signup()) as client:
        routes = body_routes(client)
        for name, (method, path) in routes.items():
            response = client.request(method, path, content=MALFORMED[kind],
                                      headers={"Content-Type": "application/json"})  # fmt: skip
            assert_field_errors(response)
            assert response.json()["detail"][0]["type"] == "json_invalid", (name, response.text)
            assert "\\ud800" not in response.text
    assert not server_errors, [record.getMessage() for record in server_errors]


def test_invalid_form_bodies_are_4xx(api: Api, server_errors: list[logging.LogRecord]) -> None:
    forms = [
        b"username=\xff\xfe%ED%A0%80&password=\xed\xa0\x80",
        b"username=%FF&password=%",
        b"\xff\x00\x01",
    ]
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    with api.client() as client:
        for form in forms:
            login = client.post("/api/v1/auth/login", content=form, headers=urlencoded)
            assert login.status_code in (401, 422), login.text
        multipart = {"Content-Type": "multipart/form-data; boundary=x"}
        broken = client.post("/api/v1/auth/login", content=b"--x\r\n\xff", headers=multipart)
        assert 400 <= broken.status_code < 500, broken.text
        with_file = client.post("/api/v1/auth/login", data={"username": "a@example.com"},
                                files={"password": ("p.bin", b"\xff" * 10)})  # fmt: skip
        assert_field_errors(with_file)
    assert not server_errors, [record.getMessage() for record in server_errors]


def test_error_answers_never_repeat_what_was_sent(api: Api, signup: Signup) -> None:
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/auth/register", {"email": "bob@example.com", "password": SENTINEL[:7]}),
        ("POST", "/api/v1/auth/register", {"email": f"{SENTINEL}<>@exa mple.com",
                                           "password": SENTINEL * 2}),
        ("POST", "/api/v1/auth/register", {"email": f"bob@{SENTINEL}\u00ad.com",
                                           "password": SENTINEL * 20}),
        ("POST", "/api/v1/auth/login", {"email": SENTINEL, "password": SENTINEL * 20}),
        ("POST", VIDEOS, GOOD_VIDEO | {"contentType": f"video/{SENTINEL}"}),
        ("POST", VIDEOS, GOOD_VIDEO | {"visibility": SENTINEL, "size": SENTINEL}),
        ("POST", VIDEOS, GOOD_VIDEO | {"title": SENTINEL * 100, "filename": [SENTINEL]}),
        ("POST", VIDEOS, GOOD_VIDEO | {"contentType": f"{SENTINEL}\n"}),
    ]  # fmt: skip
    with api.client(signup()) as client:
        for method, path, body in attempts:
            response = client.request(method, path, json=body)
            assert 400 <= response.status_code < 500, response.text
            assert SENTINEL.lower() not in response.text.lower(), response.text
            if response.status_code == 422 and isinstance(response.json()["detail"], list):
                assert_field_errors(response)


def test_the_documented_error_shape_has_no_input(api: Api) -> None:
    with api.client() as client:
        spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("422")
            if answer is None:
                continue
            text = json.dumps(answer)
            assert "FieldErrors" in text, (method, path, text)
            assert "HTTPValidationError" not in text, (method, path)
    assert set(schemas["FieldError"]["properties"]) == {"loc", "msg", "type"}


# --- size ------------------------------------------------------------------------------------


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """The status line and body of one HTTP/1.1 answer with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines
                  if line.lower().startswith(b"content-length:"))  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return lines[0], body


def raw_request(url: str, head: bytes, chunks: Iterable[bytes] = ()) -> tuple[bytes, bytes]:
    """Send `head` (and `chunks`) on a plain socket and read the answer as soon as there is
    one: the server may answer before it has read all that is sent."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed; its answer is in our buffer
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
        return read_answer(sock)


def test_a_body_over_the_limit_is_refused_before_it_is_read(api: Api) -> None:
    head = (b"POST /api/v1/auth/register HTTP/1.1\r\nHost: api\r\n"
            b"Content-Type: application/json\r\nContent-Length: 20971520\r\n\r\n")  # fmt: skip
    status_line, body = raw_request(api.url, head)  # not a byte of the 20 MiB is sent
    assert status_line.startswith(b"HTTP/1.1 413 "), status_line
    assert json.loads(body) == {"detail": "the request body is larger than 1048576 bytes"}


def test_a_chunked_body_is_counted_as_it_streams(api: Api) -> None:
    head = (b"POST /api/v1/auth/register HTTP/1.1\r\nHost: api\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    piece = b'{"email": "' + b"a" * (64 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    status_line, body = raw_request(api.url, head, [chunk] * 320)  # 20 MiB if all sent
    assert status_line.startswith(b"HTTP/1.1 413 "), status_line
    assert json.loads(body)["detail"].startswith("the request body is larger than")


def test_the_limit_is_a_setting_and_bodies_under_it_pass(api_settings: ApiSettings) -> None:
    settings = api_settings.model_copy(update={"max_body_bytes": 4096})
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        account = {"email": "a@example.com", "password": "long enough password"}
        padded = client.post("/api/v1/auth/register", json=account | {"name": "n" * 5000})
        assert padded.status_code == 413, padded.text
        assert client.post("/api/v1/auth/register", json=account).status_code == 201
        form = {"username": "a@example.com", "password": "x" * 5000}
        assert client.post("/api/v1/auth/login", data=form).status_code == 413
        assert client.get("/").status_code == 200  # the web app is not a body


def test_the_largest_multipart_completion_fits_the_default_limit() -> None:
    """10 000 parts (S3's maximum) with S3's ETags (a quoted MD5) stay under 1 MiB."""
    parts = [{"partNumber": number, "etag": f'"{number:032x}"'} for number in range(1, 10_001)]
    body = json.dumps({"parts": parts}).encode()
    CompleteMultipartRequest.model_validate_json(body)
    assert len(body) < ApiSettings.model_fields["max_body_bytes"].default
