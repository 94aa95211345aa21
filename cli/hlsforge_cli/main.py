"""`hlsforge`: the command line: arguments, the commands, and exit codes."""

import argparse
import contextlib
import getpass
import mimetypes
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import httpx

from hlsforge_cli import credentials, pending
from hlsforge_cli.client import ApiClient, ApiError
from hlsforge_cli.credentials import Credentials, NotSignedInError
from hlsforge_cli.follow import follow
from hlsforge_cli.models import PHASES, MultipartUpload, Playback, Video
from hlsforge_cli.output import Output
from hlsforge_cli.upload import (
    UploadError,
    UploadListener,
    multipart_upload,
    post_upload,
    storage_client,
)
from videotranscode import SOURCE_CONTENT_TYPES, VideoPhase

OK, ERROR, USAGE, REJECTED, FAILED, INTERRUPTED = 0, 1, 2, 3, 4, 130
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_CONTENT_TYPE = "video/mp4"
MAX_TITLE = 200
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PLAYBACK_WAIT_SECONDS = 10
PLAYABLE_NOW = "playable now, while the rest encodes: "

EPILOG = """\
exit codes:
  0    done (upload, retry: the video was transcoded; its playback URL is the last line of
       stdout; when its start plays before the rest is encoded, that URL is also told on
       stderr then)
  1    the API (5xx) or the storage failed or could not be reached, not signed in or a
       wrong password (401), no such video (404)
  2    wrong usage (bad arguments, not an email address, no such or unreadable file)
  3    the API refused the request or the file: any other 4xx (409 not in a state that
       allows it, 413, 422 not a video / type or size not accepted, 429 too many), or the
       storage refused the direct upload's policy (403)
  4    the transcode failed or was cancelled (the reason is on stderr)
  130  interrupted (Ctrl-C)

Results go to stdout, progress and errors to stderr. Without a terminal the output is plain
lines for scripts. `list --json` prints a JSON array of videos (all pages); `status --json`
prints {"video": VIDEO, "playback": PLAYBACK or null until it plays}; both with the API's
camelCase field names.
Environment: HLSFORGE_API_URL (login's default API), HLSFORGE_CONFIG_DIR (where the sign-in
is kept; default ~/.config/hlsforge).
"""

Command = Callable[[argparse.Namespace, Output], int]


class UsageError(Exception):
    """Exit 2, like argparse's own errors."""


class LoginRefusedError(Exception):
    """A wrong email or password: exit 1."""


def video_id(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{24}", value):
        raise argparse.ArgumentTypeError(f"not a video id (24 hex characters): {value!r}")
    return value


def content_type_of(path: Path) -> str:
    """By the contract's table (the system's guesses are often wrong for video: `.ts` is Qt
    Linguist, `.3gp` audio), else the system's guess, else video/mp4."""
    known = SOURCE_CONTENT_TYPES.get(path.suffix.lower())
    guessed, _ = mimetypes.guess_type(path.name)
    return known or guessed or DEFAULT_CONTENT_TYPE


def readable_file(path: Path) -> None:
    """A regular file we may read, else wrong usage."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a file")
    if path.exists() and not path.is_file():  # a FIFO or a device: its size means nothing
        raise UsageError(f"{path} is not a regular file")
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except OSError as exc:  # PermissionError, …
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def signed_in_client() -> ApiClient:
    saved = credentials.load()
    return ApiClient(saved.api_url, saved.token)


# --- commands ---------------------------------------------------------------------------------


def login(args: argparse.Namespace, out: Output) -> int:
    """Sign in and keep the token."""
    api_url = (args.api_url or os.environ.get("HLSFORGE_API_URL") or DEFAULT_API_URL).rstrip("/")
    email = args.email
    if not email:
        if args.password_stdin:
            raise UsageError("--password-stdin needs --email")
        email = _ask("Email").strip()
    if not EMAIL.fullmatch(email):
        raise UsageError(f"not an email address: {email!r}")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("Password: ")
        except EOFError:
            raise UsageError("no password given (end of input)") from None
    if not password:
        raise UsageError("a password is needed")
    with ApiClient(api_url) as client:
        try:
            token = client.login(email, password)
        except ApiError as exc:
            if exc.status == 401:
                raise LoginRefusedError("incorrect email or password") from None
            if exc.status == 422:  # the API's own check of the email's form
                raise UsageError(exc.detail) from None
            raise
    path = credentials.save(Credentials.issued(api_url=api_url, email=email,
                                               token=token.access_token,
                                               expires_in=token.expires_in))  # fmt: skip
    out.info(f"signed in to {api_url} as {email} (kept in {path})")
    return OK


def _ask(what: str) -> str:
    """A line from stdin, the prompt on stderr (stdout keeps only results)."""
    print(f"{what}: ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        print(file=sys.stderr)
        raise UsageError(f"no {what.lower()} given (end of input)")
    return line.rstrip("\r\n")


def logout(args: argparse.Namespace, out: Output) -> int:
    """Forget the token."""
    out.info("signed out" if credentials.remove() else "was not signed in")
    return OK


def _upload_new(
    client: ApiClient, path: Path, args: argparse.Namespace, out: Output
) -> str:  # fmt: skip
    content_type = args.content_type or content_type_of(path)
    title = (args.title or path.stem or path.name)[:MAX_TITLE]
    created = client.create_video(title=title, filename=path.name, content_type=content_type,
                                  size=path.stat().st_size)  # fmt: skip
    video_id = created.video.id
    out.result(video_id)
    ticket = created.upload
    with storage_client() as storage, out.upload_progress(path.name) as bars:
        if isinstance(ticket, MultipartUpload):
            pending.remember(pending.PendingUpload(
                video_id=video_id, filename=path.name, size=created.video.size,
                part_size=ticket.part_size, part_count=ticket.part_count,
            ))  # fmt: skip
            _multipart(client, storage, path, video_id=video_id, ticket=ticket, bars=bars, out=out)
        else:
            try:
                post_upload(storage, path, ticket, content_type=content_type, listener=bars)
            except (UploadError, KeyboardInterrupt):  # cannot be resumed: free its place
                with contextlib.suppress(ApiError):
                    client.delete(video_id)
                    out.info(f"the upload stopped; video {video_id} was deleted")
                raise
    return video_id


def _multipart(
    client: ApiClient, storage: httpx.Client, path: Path, *, video_id: str,
    ticket: MultipartUpload, bars: UploadListener, out: Output,
) -> None:  # fmt: skip
    """A multipart upload; when it stops, how to resume it."""
    hint = f"resume with: hlsforge upload {path} --resume {video_id}"
    try:
        multipart_upload(client, storage, path, video_id, ticket, listener=bars)
    except (UploadError, ApiError, KeyboardInterrupt):
        out.info(hint)
        raise


def _assembled(client: ApiClient, video_id: str) -> bool:
    """S3 holds the whole file already: only the video's `complete` is left."""
    try:
        return client.uploaded_parts(video_id).completed
    except ApiError as exc:
        if exc.status == 409:  # not a multipart upload: the caller says what to do
            return False
        raise


def _resume(client: ApiClient, path: Path, video_id: str, out: Output) -> None:
    """Upload the parts S3 does not have yet, if the file is not uploaded already."""
    video = client.video(video_id)
    out.result(video_id)
    if video.phase != VideoPhase.AWAITING_UPLOAD:
        if video.phase not in (VideoPhase.FAILED, VideoPhase.CANCELLED):  # `complete` says why
            out.info(f"video {video_id} is already uploaded ({video.phase})")
        return
    if _assembled(client, video_id):
        out.info(f"the parts of video {video_id} are already assembled in storage")
        return
    remembered = pending.recall(video_id)
    if remembered is None:
        raise UsageError(
            f"no unfinished multipart upload of video {video_id} is known here (a direct "
            "POST upload cannot be resumed: upload the file again)"
        )
    if path.stat().st_size != remembered.size:
        raise UsageError(f"{path} has {path.stat().st_size} bytes; the upload of video "
                         f"{video_id} has {remembered.size}")  # fmt: skip
    ticket = MultipartUpload(method="multipart", part_size=remembered.part_size,
                             part_count=remembered.part_count)  # fmt: skip
    with storage_client() as storage, out.upload_progress(path.name) as bars:
        _multipart(client, storage, path, video_id=video_id, ticket=ticket, bars=bars, out=out)


def _playback(client: ApiClient, video_id: str) -> Playback:
    """The playback URLs, waiting a little if the video's record lags behind the event."""
    deadline = time.monotonic() + PLAYBACK_WAIT_SECONDS
    while True:
        try:
            return client.playback(video_id)
        except ApiError as exc:
            if exc.status != 409 or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def upload(args: argparse.Namespace, out: Output) -> int:
    """Upload, complete, follow the transcode, print the playback URL."""
    path: Path = args.file
    readable_file(path)
    with signed_in_client() as client:
        if args.resume:
            _resume(client, path, args.resume, out)
            video_id = args.resume
        else:
            video_id = _upload_new(client, path, args, out)
        try:
            video = client.complete(video_id)
        except ApiError as exc:
            if exc.status == 422:  # the video has failed: nothing to resume
                pending.forget(video_id)
                out.error(f"the file was rejected: {exc.detail}")
                return REJECTED
            if _retryable(exc) and pending.recall(video_id) is not None:
                out.info(f"resume with: hlsforge upload {path} --resume {video_id}")
            raise
        pending.forget(video_id)
        if args.no_follow:
            out.info(f"video {video_id} is {video.phase}; follow it with: hlsforge status "
                     f"{video_id}")  # fmt: skip
            return OK
        return _follow(client, video_id, out)


def _follow(client: ApiClient, video_id: str, out: Output, after: datetime | None = None) -> int:
    """Follow the transcode to its end (one written after `after`); print the playback URL
    if it succeeded."""

    playable = playable_announcer(client, video_id, out)
    try:
        with out.transcode_progress() as bars:
            video = follow(client, video_id, bars, after=after, on_playable=playable)
    except KeyboardInterrupt:
        out.info(f"stopped following; the transcode goes on: hlsforge status {video_id}")
        raise
    return _finished(client, video, out)


def playable_announcer(client: ApiClient, video_id: str, out: Output) -> Callable[[], None]:
    """What following does when the start plays while the rest encodes: tell its playback URL
    on stderr (stdout keeps only the final one, for scripts)."""

    def announce() -> None:
        url = _playback(client, video_id).master_url
        out.info(f"{PLAYABLE_NOW}{url}")

    return announce


def _retryable(exc: ApiError) -> bool:
    return exc.status is None or exc.status >= 500 or exc.status == 429


def _finished(client: ApiClient, video: Video, out: Output) -> int:
    if video.phase != VideoPhase.SUCCEEDED:
        reason = video.error or f"the video is {video.phase}"
        ended = "failed" if video.phase == VideoPhase.FAILED else "stopped"
        out.error(f"the transcode {ended}: {reason}")
        return FAILED
    out.result(_playback(client, video.id).master_url)
    return OK


def list_videos(args: argparse.Namespace, out: Output) -> int:
    """My videos, newest first."""
    with signed_in_client() as client:
        videos = list(client.all_videos(phase=args.phase))
    if args.json:
        out.json(videos)
    else:
        out.videos(videos)
    return OK


def status(args: argparse.Namespace, out: Output) -> int:
    """One video: its phase, renditions, and playback URL once it plays."""
    with signed_in_client() as client:
        video = client.video(args.id)
        playback = _playback(client, video.id) if video.playable else None
    if args.json:
        out.json({"video": video, "playback": playback})
    else:
        out.video(video, playback)
    return OK


def cancel(args: argparse.Namespace, out: Output) -> int:
    """Stop a transcode; the video and its source stay, so it can be retried."""
    with signed_in_client() as client:
        client.cancel(args.id)
    out.info(f"cancelling the transcode of video {args.id}; run it again with: hlsforge retry "
             f"{args.id}")  # fmt: skip
    return OK


def retry(args: argparse.Namespace, out: Output) -> int:
    """Run again what failed or was cancelled, and follow it like an upload."""
    with signed_in_client() as client:
        asked = client.retry(args.id)
        if args.no_follow:
            out.info(f"retrying video {args.id}; follow it with: hlsforge status {args.id}")
            return OK
        return _follow(client, args.id, out, after=asked.updated_at)


def delete(args: argparse.Namespace, out: Output) -> int:
    """Delete a video, its transcode and its files."""
    with signed_in_client() as client:
        client.delete(args.id)
    out.info(f"deleted video {args.id}")
    return OK


# --- arguments --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="hlsforge", description="Upload videos to hlsforge and get adaptive HLS back.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        sub.set_defaults(run=run)
        return sub

    sub = command("login", login, "sign in; the token is kept, the password is not")
    sub.add_argument("--api-url", help=f"the API (default: $HLSFORGE_API_URL or {DEFAULT_API_URL})")
    sub.add_argument("--email", help="your account's email (default: asked)")
    sub.add_argument("--password-stdin", action="store_true",
                     help="read the password from stdin's first line (default: asked)")  # fmt: skip

    command("logout", logout, "forget the kept token")

    sub = command("upload", upload, "upload a video, follow its transcode, print its playback URL")
    sub.add_argument("file", type=Path, metavar="FILE")
    sub.add_argument("--title", help="the video's title (default: the file's name)")
    guess = f"default: guessed from the name, else {DEFAULT_CONTENT_TYPE}"
    sub.add_argument("--content-type", help=f"the file's media type ({guess})")
    sub.add_argument("--no-follow", action="store_true",
                     help="return once the transcode is queued")  # fmt: skip
    sub.add_argument("--resume", type=video_id, metavar="ID",
                     help="finish an interrupted multipart upload of this video")  # fmt: skip

    sub = command("list", list_videos, "list my videos, newest first")
    sub.add_argument("--phase", choices=PHASES, help="only videos in this phase")
    sub.add_argument("--json", action="store_true", help="print a JSON array of the videos")

    sub = command("status", status, "show one video: phase, renditions, playback URL")
    sub.add_argument("id", type=video_id, metavar="ID")
    sub.add_argument("--json", action="store_true",
                     help='print {"video": ..., "playback": ... or null} as JSON')  # fmt: skip

    sub = command("cancel", cancel, "stop a transcode, keeping the video to retry it")
    sub.add_argument("id", type=video_id, metavar="ID")

    sub = command("retry", retry, "run a failed or cancelled transcode again and follow it")
    sub.add_argument("id", type=video_id, metavar="ID")
    sub.add_argument("--no-follow", action="store_true", help="return once it is asked for")

    sub = command("delete", delete, "delete a video with its transcode and files")
    sub.add_argument("id", type=video_id, metavar="ID")
    return root


def run(argv: Sequence[str] | None = None, out: Output | None = None) -> int:
    """Run one command; returns the exit code."""
    args = parser().parse_args(argv)  # exits with 2 on bad usage
    out = out or Output()
    try:
        code: int = args.run(args, out)
    except BrokenPipeError:
        raise  # main() handles it
    except (UsageError, LoginRefusedError, NotSignedInError, ApiError, UploadError, OSError,
            KeyboardInterrupt) as exc:  # fmt: skip
        return failure(exc, out)
    return code


def failure(exc: BaseException, out: Output) -> int:
    """Say what went wrong; the exit code for it."""
    code = ERROR
    message = str(exc)
    if isinstance(exc, UsageError):
        code = USAGE
    elif isinstance(exc, KeyboardInterrupt):
        code, message = INTERRUPTED, "interrupted"
    elif isinstance(exc, ApiError) and exc.status == 401:
        message = f"not signed in, or the sign-in expired: run `hlsforge login` ({exc.detail})"
    elif isinstance(exc, ApiError) and exc.status is not None and 400 <= exc.status < 500:
        code = ERROR if exc.status == 404 else REJECTED  # refused: 409, 413, 422, 429, …
    elif isinstance(exc, UploadError) and exc.rejected:
        code = REJECTED
    elif isinstance(exc, OSError) and exc.filename and exc.strerror:  # e.g. the file vanished
        message = f"{exc.filename}: {exc.strerror}"
    out.error(message)
    return code


def main() -> None:
    try:
        code = run()
        sys.stdout.flush()
    except BrokenPipeError:  # `hlsforge list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = ERROR
    sys.exit(code)
