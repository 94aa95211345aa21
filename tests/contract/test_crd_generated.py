"""The committed CRD and the chart's copy are what the models generate (`make crd`), and the
generator states every constraint or refuses."""

from pathlib import Path

import pytest
import yaml
from hlsforge_dev.crd_files import CRD_FILES, ROOT, render
from pydantic import BaseModel, ConfigDict, Field

from videotranscode.crd import build_crd, field_schema, immutability_rule, model_schema


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_committed_crd_is_generated_from_the_models(path: Path) -> None:
    assert path.read_text() == render(build_crd()), (
        f"{path.relative_to(ROOT)} is not what the models generate: run `make crd`"
    )


def test_the_yaml_reads_back_as_built() -> None:
    """Folded prose and multi-line CEL rules keep their meaning."""
    crd = build_crd()
    assert yaml.safe_load(render(crd)) == crd


class _Described(BaseModel):
    """A model whose fields' docstrings are their descriptions, like the contract's."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class _Inner(_Described):
    """Inner."""

    fixed: int
    """Required: always present."""
    free: int = 0
    """Mutable."""


class _Outer(_Described):
    """Outer."""

    inner: _Inner
    """Partly mutable."""
    optional: str | None = None
    """May be absent."""
    defaulted: int = 1
    """Always present once stored."""
    free: bool = False
    """Mutable."""


def test_the_transition_rule_keeps_all_but_the_mutable_fields() -> None:
    assert immutability_rule(_Outer, ("inner.free", "free")).split("\n") == [
        "self.inner.fixed == oldSelf.inner.fixed",
        "&& has(self.optional) == has(oldSelf.optional)",
        "&& (!has(self.optional) || self.optional == oldSelf.optional)",
        "&& self.defaulted == oldSelf.defaulted",
    ]


def test_a_nested_model_with_all_defaults_defaults_to_an_empty_object() -> None:
    class WithInner(_Described):
        """With a defaulted inner object."""

        inner: _Inner = _Inner(fixed=1)
        """Not all defaults: the API server could not fill in `fixed`."""

    with pytest.raises(ValueError, match="must be the model's own defaults"):
        model_schema(WithInner)
    assert model_schema(_Outer)["properties"]["defaulted"]["default"] == 1


def test_a_constraint_the_generator_does_not_know_is_refused() -> None:
    class Positive(_Described):
        """Positive."""

        count: int = Field(gt=0)
        """Greater than zero: `exclusiveMinimum`, which the generator does not write yet."""

    with pytest.raises(TypeError, match="does not know"):
        field_schema(Positive.model_fields["count"], where="Positive.count")


def test_a_field_without_a_description_is_refused() -> None:
    class Undocumented(_Described):
        """Undocumented."""

        count: int

    with pytest.raises(ValueError, match=r"Undocumented\.count needs a docstring"):
        model_schema(Undocumented)
