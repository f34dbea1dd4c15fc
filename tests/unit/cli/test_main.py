"""The ``smartfarm`` command: help texts, errors that name the fix, and ``smartfarm up`` for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import build_parser, main


def subcommands() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["up", "layout", "edge", "forecast"])
def test_every_settings_option_names_its_env_variable(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    options = [a for a in subcommands()[name]._actions if "." in a.dest]  # type: ignore[attr-defined]
    assert options
    for action in options:
        assert action.option_strings[0] in text
    assert text.count("[env: SMARTFARM_") == len(options)


def test_a_bad_layout_is_a_clear_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "farm.yaml"
    bad.write_text("farms: []\n")
    assert main(["layout", "--layout", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} is not a valid farm layout" in err and "Traceback" not in err


def test_layout_summarises_the_default_farm(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layout"]) == 0
    out = capsys.readouterr().out
    assert "farm valley-farm" in out and "zone tomato-north" in out


def test_up_refuses_a_port_held_by_something_that_is_not_the_service_naming_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert main(["up", "--workdir", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"mqtt://127.0.0.1:{port} (SMARTFARM_MQTT_HOST/PORT) does not answer as Mosquitto" in err
    assert "set SMARTFARM_MQTT_HOST/PORT to a free loopback port" in err


def test_broker_auth_makes_the_ca_once_and_issues_device_certificates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "broker"
    assert main(["broker-auth", str(folder), "--device-cert", "soil-tomato-north-1"]) == 2, "no CA yet"
    assert "no CA in" in capsys.readouterr().err
    assert main(["broker-auth", str(folder), "--tls"]) == 0
    ca = (folder / "tls" / "ca.crt").read_bytes()
    assert main(["broker-auth", str(folder), "--tls", "--device-cert", "soil-tomato-north-1"]) == 0
    assert (folder / "tls" / "ca.crt").read_bytes() == ca, "kept, not made again"
    assert (folder / "tls" / "clients" / "soil-tomato-north-1.key").stat().st_mode & 0o077 == 0
    assert (folder / "passwd").exists() and (folder / "acl").exists(), "broker-auth's files as before"


def test_a_command_is_parsed_the_same_by_its_own_parser_as_by_the_whole_one() -> None:
    from cli.main import COMMANDS, _chosen

    assert set(subcommands()) == set(COMMANDS) | {"bench"}
    for name in COMMANDS:
        action = next(a for a in build_parser(name)._actions if a.dest == "command")
        assert list(action.choices) == [name]  # type: ignore[union-attr]
    assert _chosen(["--log-level", "INFO", "bridge", "--mqtt-port", "1"]) == "bridge"
    assert _chosen(["--help"]) is None and _chosen(["bench", "--help"]) is None and _chosen(["nosuch"]) is None
