"""Fixtures of the deploy tests: helm, and the chart rendered once per value set.

Value sets: the chart's defaults, `values-kind.yaml`, and every `ci/*-values.yaml` (the
chart-testing convention), which between them switch each optional feature on and off.
"""

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from deploy.chart import ROOT, VALUE_SETS, Rendered, find_helm, render


@pytest.fixture(scope="session")
def helm() -> str:
    return find_helm()


@pytest.fixture(scope="session")
def render_set(helm: str) -> Callable[[str], Rendered]:
    """`render_set(name)`: the chart rendered with that value set, once per session."""
    cache: dict[str, Rendered] = {}

    def rendered(name: str) -> Rendered:
        if name not in cache:
            cache[name] = render(helm, name, VALUE_SETS[name])
        return cache[name]

    return rendered


@pytest.fixture(params=list(VALUE_SETS), ids=str)
def rendered(request: pytest.FixtureRequest, render_set: Callable[[str], Rendered]) -> Rendered:
    """The chart rendered with each value set in turn."""
    name: str = request.param
    return render_set(name)


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "crds" / "videotranscodes.hlsforge.dev.yaml").read_text())
    assert isinstance(document, dict)
    return document
