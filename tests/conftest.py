"""Fixtures shared by all test packages."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import make_clip, mongodb_server

ClipFactory = Callable[..., Path]


@pytest.fixture
def clip(tmp_path: Path) -> ClipFactory:
    """`clip("name.mp4", size=..., seconds=...)` makes a clip under the test's tmp dir."""

    def factory(name: str = "source.mp4", **options: object) -> Path:
        return make_clip(tmp_path / name, **options)  # type: ignore[arg-type]

    return factory


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    """A MongoDB-compatible server for the whole test session."""
    with mongodb_server() as uri:
        yield uri
