"""Fixtures shared by all test packages."""

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import make_clip

ClipFactory = Callable[..., Path]


@pytest.fixture
def clip(tmp_path: Path) -> ClipFactory:
    """`clip("name.mp4", size=..., seconds=...)` makes a clip under the test's tmp dir."""

    def factory(name: str = "source.mp4", **options: object) -> Path:
        return make_clip(tmp_path / name, **options)  # type: ignore[arg-type]

    return factory
