"""architecture.md's examples of the farm API's requests and responses validate with the models they name."""

from __future__ import annotations

import importlib
import re

import pytest
from pydantic import BaseModel

from tests.helpers import repo_root

EXAMPLE = re.compile(r"<!-- (?:request|response): ([\w.]+) -->\s*```json\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall((repo_root() / "architecture.md").read_text())


def test_the_api_section_has_examples() -> None:
    assert len(examples()) >= 5


@pytest.mark.parametrize(("path", "doc"), examples(), ids=lambda v: v if "." in v and "{" not in v else "")
def test_each_api_example_validates_with_its_model(path: str, doc: str) -> None:
    module, _, name = path.rpartition(".")
    model = getattr(importlib.import_module(module), name)
    assert issubclass(model, BaseModel)
    value = model.model_validate_json(doc)
    assert model.model_validate_json(value.model_dump_json()) == value
