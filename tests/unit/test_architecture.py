"""architecture.md stays true: its JSON examples decode with the models they name."""

from __future__ import annotations

import importlib
import re

import pytest

from smartfarm.contract import Contract
from tests.helpers import repo_root

EXAMPLE = re.compile(r"<!-- contract: ([\w.]+) -->\s*```json\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall((repo_root() / "architecture.md").read_text())


@pytest.mark.parametrize(("path", "doc"), examples(), ids=lambda v: v if "." in v and "{" not in v else "")
def test_each_json_example_decodes_with_its_model(path: str, doc: str) -> None:
    module, _, name = path.rpartition(".")
    model = getattr(importlib.import_module(module), name)
    assert issubclass(model, Contract)
    message = model.decode(doc.encode())
    assert model.decode(message.encode()) == message


def test_every_wire_model_has_an_example() -> None:
    documented = {path.rpartition(".")[2] for path, _ in examples()}
    importlib.import_module("smartfarm.records")
    models = {cls.__name__ for cls in _subclasses(Contract)}
    assert models == documented


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found
