"""Rendition pods given the probe's facts (`--source-info`) do not probe the source again,
and a time slice of an S3 source reads only its part of it, through a presigned URL whose
secret never shows in what the worker reports."""

import contextlib
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import AWS, ffmpeg, make_interlaced_clip, run_worker

from transcode_worker.cli import read_request
from transcode_worker.probe import ProbedSource, probe_source
from videotranscode import AudioArgs, RenditionArgs, RenditionSpec, SliceResult, SourceInfo

SECONDS = 60
SLICE_SECONDS = 6
MIDDLE = 5  # the slice of 30-36 s (from 29 s with its warm-up)
KEY = "clips/original.mp4"
SOURCE = f"s3://uploads/{KEY}"
RUNG = RenditionSpec(name="180p", height=180, video_bitrate="400k")


@dataclass
class Served:
    """Bytes the S3 server sent to its clients through the proxy."""

    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int) -> None:
        with self.lock:
            self.count += n

    def reset(self) -> None:
        with self.lock:
            self.count = 0


def _pump(source: socket.socket, target: socket.socket, served: Served | None) -> None:
    with source, target:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
                if served is not None:
                    served.add(len(chunk))
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def counting_s3(s3_endpoint: str) -> Iterator[tuple[str, Served]]:
    """The moto server behind a TCP proxy on loopback that counts the bytes it serves."""
    upstream = s3_endpoint.removeprefix("http://").rsplit(":", 1)
    listener = socket.create_server(("127.0.0.1", 0))
    served = Served()
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection((upstream[0], int(upstream[1])))
            threading.Thread(target=_pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=_pump, args=(server, client, served), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", served
    stop.set()
    listener.close()


@pytest.fixture(scope="module")
def source_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of noisy pictures at a high bitrate (some 85 MB), with sound, the index (moov) at
    the end as many cameras write it. FFmpeg seeks in it three times, and each abandoned
    connection has carried what the socket buffers hold (some 4 MB on loopback): the file is
    large enough that this is small beside it."""
    work = tmp_path_factory.mktemp("facts")
    part, path = work / "part.mp4", work / "original.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=30:duration={SECONDS // 3},"
           "noise=alls=30:allf=t", "-f", "lavfi", "-i",
           f"sine=frequency=440:sample_rate=48000:duration={SECONDS // 3}",
           "-c:v", "libx264", "-preset", "ultrafast", "-qp", "20", "-g", "60",
           "-pix_fmt", "yuv420p", "-c:a", "aac", str(part))  # fmt: skip
    ffmpeg("-stream_loop", "2", "-i", str(part), "-c", "copy", str(path))
    return path


@pytest.fixture(scope="module")
def facts(source_file: Path) -> SourceInfo:
    """What the probe Job reports of the source (its termination message)."""
    run = run_worker("probe", str(source_file))
    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout.splitlines()[-1])
    assert len(json.dumps(done)) < 4096  # a termination message
    return SourceInfo.model_validate(done["result"]["source"])


@pytest.fixture
def uploaded(s3: Any, source_file: Path) -> int:
    s3.upload_file(str(source_file), "uploads", KEY)
    return source_file.stat().st_size


Shim = tuple[dict[str, str], Path]  # the environment's PATH, and the log of the calls


@pytest.fixture
def shim(tmp_path: Path) -> Shim:
    """`ffmpeg` and `ffprobe` on PATH that log each command line, then run the real ones."""
    bin_dir, log = tmp_path / "shim", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("ffmpeg", "ffprobe"):
        real = next(
            Path(d) / tool
            for d in os.environ["PATH"].split(os.pathsep)
            if (Path(d) / tool).is_file()
        )
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\nexec {real} "$@"\n')
        script.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, log


def worker_env(endpoint: str, tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    return {**os.environ, **AWS, "AWS_ENDPOINT_URL": endpoint,
            "HLSFORGE_SCRATCH_DIR": str(scratch), **extra}  # fmt: skip


def slice_args(output: Path, source_info: SourceInfo | None, index: int = MIDDLE) -> list[str]:
    """The slice pod's command line, as the operator builds it."""
    return RenditionArgs(
        source=SOURCE, output=str(output), rendition=RUNG, slice_seconds=SLICE_SECONDS,
        slice_index=index, source_info=source_info,
    ).argv()  # fmt: skip


def calls_on_the_source(log: Path) -> list[str]:
    """The FFmpeg and ffprobe runs that read the source (by URL or as the downloaded file)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if KEY in line or "/source.mp4" in line]


def test_the_facts_the_probe_reports_are_all_a_rendition_needs(facts: SourceInfo) -> None:
    assert facts.has_encoding_facts()
    assert facts.video.stream_index == 0
    assert [track.stream_index for track in facts.audio_streams] == [1]
    assert facts.start_seconds == 0
    assert facts.video_shortfall_seconds is not None
    assert facts.video.field_first is None  # progressive
    older = facts.model_copy(update={"start_seconds": None})  # a probe result of before
    assert not older.has_encoding_facts()


def test_a_slice_with_the_facts_reads_only_its_range_and_probes_nothing(
    counting_s3: tuple[str, Served], uploaded: int, facts: SourceInfo, shim: Shim, tmp_path: Path,
) -> None:  # fmt: skip
    endpoint, served = counting_s3
    path_env, log = shim
    env = worker_env(endpoint, tmp_path, path_env)

    # Without the facts (an older operator, a laptop run): the pod probes the source itself.
    run = run_worker(*slice_args(tmp_path / "probed", None), env=env)
    assert run.returncode == 0, run.stderr
    probed = calls_on_the_source(log)
    assert len([line for line in probed if line.startswith("ffprobe")]) >= 2, probed  # tail too
    assert all(f"{KEY}?" in call for call in probed)  # through the URL too
    log.unlink()
    served.reset()

    run = run_worker(*slice_args(tmp_path / "given", facts), env=env)
    assert run.returncode == 0, run.stderr
    read = served.count
    # No ffprobe, tail check or idet (nor a keyframe search: MP4 seeks on its index).
    [encode] = calls_on_the_source(log)
    assert encode.startswith("ffmpeg")
    assert "-ss" in encode.split()
    assert f"{KEY}?" in encode  # the presigned URL, not a downloaded file
    # 7 s of 60 (and the index at the end of the file), not all 85 MB.
    assert read < uploaded * 0.4, (read, uploaded)

    # The same slice as from the downloaded, probed source.
    results = {}
    for name in ("probed", "given"):
        rung_dir = tmp_path / name / RUNG.name
        result = SliceResult.model_validate_json((rung_dir / f"slice_{MIDDLE}.json").read_text())
        results[name] = result
        assert result.rendition is not None
        assert result.rendition.duration_seconds == pytest.approx(SLICE_SECONDS, abs=0.05)
    probed_result, given_result = results["probed"], results["given"]
    assert given_result.first_pts_seconds == probed_result.first_pts_seconds
    assert given_result.segments == probed_result.segments
    # The same pictures and sound at the same times (x264's bits vary from run to run).
    assert timestamps(tmp_path / "given", given_result) == timestamps(
        tmp_path / "probed", probed_result
    )


def timestamps(output: Path, result: SliceResult) -> list[str]:
    """Stream and presentation time of every packet of the slice's init section and segments."""
    rung_dir = output / RUNG.name
    parts = [result.init_uri or "", *(segment.uri for segment in result.segments)]
    joined = rung_dir / "joined.mp4"
    joined.write_bytes(b"".join((rung_dir / part).read_bytes() for part in parts if part))
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts", "-of", "csv",
         str(joined)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert len(lines) > SLICE_SECONDS * 30
    return lines


def test_the_probe_reads_an_s3_source_through_a_url_not_a_download(
    counting_s3: tuple[str, Served], uploaded: int, facts: SourceInfo, shim: Shim, tmp_path: Path,
) -> None:  # fmt: skip
    """The probe Job reads what it needs (the index, the tail, the poster's frames) through
    a presigned URL: a large upload is not downloaded before anything can start. (Each of
    its reads opens the file anew, and an abandoned request carries what the socket buffers
    hold: on this 85 MB file that adds up to most of it, a fixed cost a large file dwarfs.)"""
    endpoint, _ = counting_s3
    path_env, log = shim
    run = run_worker("probe", SOURCE, str(tmp_path / "out"),
                     env=worker_env(endpoint, tmp_path, path_env))  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])["result"]
    assert SourceInfo.model_validate(result["source"]) == facts  # what a local probe finds
    assert (tmp_path / "out" / "poster.jpg").stat().st_size > 0
    calls = calls_on_the_source(log)
    assert len(calls) >= 3  # ffprobe, the tail check, the poster
    assert all(f"{KEY}?" in call for call in calls)  # none on a downloaded copy


def test_an_audio_rendition_streams_the_source(
    counting_s3: tuple[str, Served], uploaded: int, facts: SourceInfo, shim: Shim, tmp_path: Path,
) -> None:  # fmt: skip
    """The audio reads the source as it encodes, so its first segments are stored within
    seconds, not after a download of the whole source."""
    endpoint, _ = counting_s3
    path_env, log = shim
    argv = AudioArgs(source=SOURCE, output=str(tmp_path / "out"), name="audio-0", stream=0,
                     source_info=facts).argv()  # fmt: skip
    run = run_worker(*argv, env=worker_env(endpoint, tmp_path, path_env))
    assert run.returncode == 0, run.stderr
    [encode] = calls_on_the_source(log)
    assert encode.startswith("ffmpeg")
    assert f"{KEY}?" in encode
    assert "-reconnect" in encode.split()
    result = json.loads(run.stdout.splitlines()[-1])["result"]
    assert result["durationSeconds"] == pytest.approx(SECONDS, abs=0.1)


def test_a_rendition_with_the_facts_downloads_but_does_not_probe(
    counting_s3: tuple[str, Served], uploaded: int, facts: SourceInfo, shim: Shim, tmp_path: Path,
) -> None:  # fmt: skip
    """A whole rung reads every byte: it downloads the source, and does not probe it."""
    endpoint, served = counting_s3
    path_env, log = shim
    argv = RenditionArgs(source=SOURCE, output=str(tmp_path / "out"), rendition=RUNG,
                         source_info=facts).argv()  # fmt: skip
    run = run_worker(*argv, env=worker_env(endpoint, tmp_path, path_env))
    assert run.returncode == 0, run.stderr
    assert served.count >= uploaded
    [encode] = calls_on_the_source(log)
    assert encode.startswith("ffmpeg")
    assert "/source.mp4" in encode


def test_the_presigned_url_never_shows_in_what_the_worker_reports(
    counting_s3: tuple[str, Served], s3: Any, facts: SourceInfo, shim: Shim, tmp_path: Path,
) -> None:  # fmt: skip
    """FFmpeg names its input in its error lines: a slice of an object that is not the video
    the facts describe fails with FFmpeg's words, and no signature or credential in them, in
    the termination message, stdout (events) or stderr (the pod's log)."""
    endpoint, _ = counting_s3
    path_env, log = shim
    s3.put_object(Bucket="uploads", Key=KEY, Body=b"not a video at all " * 5000)
    termination = tmp_path / "termination-log"
    argv = [*slice_args(tmp_path / "out", facts), "--termination-log", str(termination)]
    run = run_worker(*argv, env=worker_env(endpoint, tmp_path, path_env))
    assert run.returncode != 0
    [encode] = calls_on_the_source(log)  # FFmpeg was given the presigned URL ...
    url = next(arg for arg in encode.split() if KEY in arg)
    query = url.split("?", 1)[1]
    secrets = [query, *(p.split("=", 1)[1] for p in query.split("&") if "Signature" in p)]
    assert any("Signature" in p for p in query.split("&")), url
    reported = json.loads(termination.read_text())
    message = reported["message"]
    assert KEY in message  # ... and its words, which name the input, are reported
    # Read over HTTP, what looks like a broken file may be a broken transfer (the probe found
    # the file whole): exit 1, the slice is tried again, rather than exit 2, bad input.
    assert (run.returncode, reported["exitCode"], reported["reason"]) == (1, 1, "Error")
    for secret in [*secrets, "X-Amz-Credential", "X-Amz-Signature", "Signature="]:
        for reported in (run.stdout, run.stderr, termination.read_text()):
            assert secret not in reported


def _video_shorter_than_sound(path: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
           "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=4",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path))  # fmt: skip
    return path


FACT_SOURCES: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "tff-h264-mp4": ("tff.mp4", make_interlaced_clip),  # field order declared: auto
    "bff-h264-ts": ("bff.ts", lambda p: make_interlaced_clip(p, top_field_first=False)),
    "bff-mpeg4-avi": (  # measured by idet: bff
        "bff.avi",
        lambda p: make_interlaced_clip(
            p, top_field_first=False, encoder=("-c:v", "mpeg4", "-flags", "+ilme+ildct")
        ),
    ),
    "shortfall": ("short-video.mp4", _video_shorter_than_sound),
}


@pytest.mark.parametrize("case", FACT_SOURCES)
def test_the_facts_passed_on_make_the_source_the_probe_found(case: str, tmp_path: Path) -> None:
    """Through the Job's command line and back, the facts give the worker the very source
    the probe found: streams, deinterlacing, start time (MPEG-TS starts late), shortfall."""
    name, make = FACT_SOURCES[case]
    path = make(tmp_path / name)
    probed = probe_source(path, min_duration=0.5, max_duration=3600)
    argv = RenditionArgs(source=str(path), output="out", rendition=RUNG, source_info=probed.info)
    request = read_request(argv.argv())
    assert isinstance(request, RenditionArgs)
    assert request.source_info is not None
    assert ProbedSource.from_facts(path, request.source_info) == probed
    assert probed.scan.interlaced == case.startswith(("tff", "bff"))
    if case == "bff-mpeg4-avi":
        assert probed.scan.field_first == "bff"
    if case == "bff-h264-ts":
        assert probed.start_seconds > 0
    if case == "shortfall":
        assert probed.video_shortfall_seconds == pytest.approx(2, abs=0.2)
