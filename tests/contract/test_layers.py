"""The layers, checked on every module's imports (issue 11): the contract imports only
pydantic; the worker, the operator and the API never import one another or the test
emulator; the CLI imports nothing of ours but the contract."""

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "videotranscode": ROOT / "operator" / "videotranscode",
    "transcode_worker": ROOT / "images" / "transcoder" / "transcode_worker",
    "transcode_operator": ROOT / "operator" / "transcode_operator",
    "transcode_api": ROOT / "api" / "transcode_api",
    "hlsforge_cli": ROOT / "cli" / "hlsforge_cli",
}
DEPLOYABLES = ("transcode_worker", "transcode_operator", "transcode_api")
# What each package outside the contract must not import.
FORBIDDEN = {
    "transcode_worker": {"transcode_operator", "transcode_api", "hlsforge_cli", "hlsforge_dev"},
    "transcode_operator": {"transcode_worker", "transcode_api", "hlsforge_cli", "hlsforge_dev"},
    "transcode_api": {"transcode_worker", "transcode_operator", "hlsforge_cli", "hlsforge_dev"},
    "hlsforge_cli": {"transcode_worker", "transcode_operator", "transcode_api", "hlsforge_dev"},
}
CONTRACT_MAY_IMPORT = {"videotranscode", "pydantic", "pydantic_core", "annotated_types"}


def imported_roots(source: str) -> set[str]:
    """The top-level packages a module imports, wherever the import statement is."""
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def crossings(package: str, modules: Iterable[tuple[str, str]]) -> list[str]:
    """`module imports root` for each import that crosses `package`'s layer."""
    found = []
    for name, source in modules:
        for root in sorted(imported_roots(source)):
            if package == "videotranscode":
                crossed = root not in CONTRACT_MAY_IMPORT and root not in sys.stdlib_module_names
            else:
                crossed = root in FORBIDDEN[package]
            if crossed:
                found.append(f"{name} imports {root}")
    return found


def modules_of(package: str) -> list[tuple[str, str]]:
    folder = PACKAGES[package]
    return [
        (str(path.relative_to(ROOT)), path.read_text()) for path in sorted(folder.rglob("*.py"))
    ]


@pytest.mark.parametrize("package", ["videotranscode", *DEPLOYABLES, "hlsforge_cli"])
def test_no_module_crosses_its_layer(package: str) -> None:
    modules = modules_of(package)
    assert modules, f"no modules found for {package}"
    assert crossings(package, modules) == []


def test_a_crossing_is_named_with_its_module() -> None:
    worker = [("w.py", "def f():\n    from transcode_api.models import VideoPublic\n")]
    assert crossings("transcode_worker", worker) == ["w.py imports transcode_api"]
    contract = [("c.py", "import json\nimport boto3\nfrom pydantic import BaseModel\n")]
    assert crossings("videotranscode", contract) == ["c.py imports boto3"]
    cli = [("c.py", "from videotranscode import Phase\nimport hlsforge_dev.stack\n")]
    assert crossings("hlsforge_cli", cli) == ["c.py imports hlsforge_dev"]
