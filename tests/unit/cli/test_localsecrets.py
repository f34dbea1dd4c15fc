"""The installation's secrets: drawn once at the first start, kept private, and never over what people set."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cli.localsecrets import FILE_NAME, apply, generated_names, installation_secrets, load_or_create
from smartfarm.errors import ConfigError
from smartfarm.settings import PLACEHOLDER_SECRETS


def test_the_first_start_draws_each_secret_and_later_starts_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / "data" / FILE_NAME
    first = load_or_create(path, ["SMARTFARM_A", "SMARTFARM_B"])
    assert set(first) == {"SMARTFARM_A", "SMARTFARM_B"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(set(first.values())) == 2
    assert all(len(value) >= 40 and value not in PLACEHOLDER_SECRETS for value in first.values())
    assert load_or_create(path, ["SMARTFARM_A", "SMARTFARM_B"]) == first
    grown = load_or_create(path, ["SMARTFARM_A", "SMARTFARM_B", "SMARTFARM_C"])
    assert grown.items() >= first.items() and grown["SMARTFARM_C"] not in first.values()


def test_a_secrets_file_others_may_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    load_or_create(path, ["SMARTFARM_A"])
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {path}"):
        load_or_create(path, ["SMARTFARM_A"])


def test_what_the_environment_or_dotenv_sets_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SMARTFARM_B=from-dotenv\nSMARTFARM_D=\n")
    environ = {"SMARTFARM_A": "from-env", "SMARTFARM_C": ""}
    kept = {name: f"drawn-{name}" for name in ("SMARTFARM_A", "SMARTFARM_B", "SMARTFARM_C", "SMARTFARM_D")}
    assert apply(kept, environ, dotenv) == ["SMARTFARM_C", "SMARTFARM_D"]  # empty counts as unset
    assert environ == {
        "SMARTFARM_A": "from-env",
        "SMARTFARM_C": "drawn-SMARTFARM_C",
        "SMARTFARM_D": "drawn-SMARTFARM_D",
    }


def test_up_draws_every_generated_secret_into_its_data_folder_for_as_long_as_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {"PATH": "/bin"}
    with installation_secrets(tmp_path / ".smartfarm", environ) as drawn:
        assert drawn == generated_names() and set(environ) == {"PATH", *drawn}
        assert "SMARTFARM_EDGE_DEVICE_SECRET" in drawn
        first = dict(environ)
    assert environ == {"PATH": "/bin"}, "taken out again at the end"
    again: dict[str, str] = {}
    with installation_secrets(tmp_path / ".smartfarm", again):
        assert again == {k: v for k, v in first.items() if k != "PATH"}
