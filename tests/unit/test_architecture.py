"""architecture.md stays true: its JSON examples decode with the models they name."""

from __future__ import annotations

import importlib
import json
import re

import pytest

from smartfarm.contract import Contract
from tests.helpers import repo_root

EXAMPLE = re.compile(r"<!-- contract: ([\w.]+) -->\s*```json\n(.*?)```", re.S)
MODEL_EXAMPLE = re.compile(r"<!-- model: ([\w.]+) -->\s*```json\n(.*?)```", re.S)
"""An example of a model that is no wire contract (a registry setting the API takes): it validates as it stands."""


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall((repo_root() / "architecture.md").read_text())


@pytest.mark.parametrize(("path", "doc"), examples(), ids=lambda v: v if "." in v and "{" not in v else "")
def test_each_json_example_decodes_with_its_model(path: str, doc: str) -> None:
    module, _, name = path.rpartition(".")
    model = getattr(importlib.import_module(module), name)
    assert issubclass(model, Contract)
    message = model.decode(doc.encode())
    assert model.decode(message.encode()) == message


@pytest.mark.parametrize(
    ("path", "doc"), MODEL_EXAMPLE.findall((repo_root() / "architecture.md").read_text()), ids=lambda v: v[:40]
)
def test_each_model_example_validates_as_it_stands(path: str, doc: str) -> None:
    module, _, name = path.rpartition(".")
    model = getattr(importlib.import_module(module), name)
    documented = json.loads(doc)
    dumped = model.model_validate_json(doc).model_dump(mode="json")
    assert {key: dumped[key] for key in documented} == documented, "kept as the document shows it"


def test_every_wire_model_has_an_example() -> None:
    documented = {path.rpartition(".")[2] for path, _ in examples()}
    importlib.import_module("smartfarm.records")
    importlib.import_module("smartfarm.forecast")
    models = {cls.__name__ for cls in _subclasses(Contract)}
    assert models == documented


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found
