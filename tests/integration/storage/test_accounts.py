"""InfluxDB with authentication on: who may do what, as ``storage.accounts.declare`` leaves it, against the session
InfluxDB (its admin made at its first start, the writer and reader declared with this test's database)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import Counter, Histogram
from pydantic import SecretStr

from cli.main import main
from cli.services import free_port
from smartfarm.errors import StorageDenied, StorageError
from smartfarm.settings import InfluxLogin, InfluxSettings, KafkaSettings, environment
from storage.accounts import declare, ensure_admin
from storage.influx import InfluxClient
from storage.writer import Writer
from tests.helpers import unique
from tests.integration.pipeline import INFLUX_USERS

LINE = "probe,device=d-1 value=1.5 1780000000000000000"
NOBODY = InfluxLogin("", SecretStr(""), "SMARTFARM_INFLUX_USERNAME and SMARTFARM_INFLUX_PASSWORD")


def denied(call: object, *args: object, **kwargs: object) -> StorageDenied:
    """The StorageDenied that ``call`` raises (and fails the test when it does not)."""
    with pytest.raises(StorageDenied) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def test_each_user_may_do_what_its_grant_says_and_nothing_else(influx: InfluxClient) -> None:
    settings = influx.settings
    with (
        InfluxClient(settings, NOBODY) as anonymous,
        InfluxClient(settings, INFLUX_USERS.reader) as reader,
        InfluxClient(settings, INFLUX_USERS.admin) as admin,
        InfluxClient(settings.model_copy(update={"database": unique("other")})) as foreign,
    ):
        # Nobody logged in: neither a write nor a query, and the message names the settings to set.
        for refusal in (denied(anonymous.write_lines, [LINE]), denied(anonymous.query, "SELECT * FROM probe")):
            assert refusal.status == 401 and "requires a login" in str(refusal)
            assert "SMARTFARM_INFLUX_USERNAME and SMARTFARM_INFLUX_PASSWORD" in str(refusal)
            assert not refusal.transient and not refusal.refuses_data

        # The writer writes and reads its database, and passes the worker's start check...
        assert influx.write_lines([LINE]) == 1
        assert influx.query("SELECT count(value) AS n FROM probe")[0]["n"] == 1
        influx.check_access(write=True)
        # ...and may not read another database, nor manage users or databases.
        InfluxClient(foreign.settings, INFLUX_USERS.admin).create_database()  # no grant to the writer
        refusal = denied(foreign.query, "SELECT * FROM probe")
        assert refusal.status == 403 and "requires READ" in str(refusal) and "smartfarm influx-users" in str(refusal)
        assert denied(foreign.write_lines, [LINE]).status == 403
        assert denied(influx.query, "CREATE USER intruder WITH PASSWORD 'x'", write=True).status == 403
        assert denied(influx.query, 'CREATE DATABASE "mine"', write=True).status == 403
        assert denied(influx.query, "SHOW USERS").status == 403

        # The reader reads the database and writes nothing.
        assert reader.query("SELECT count(value) AS n FROM probe")[0]["n"] == 1
        reader.check_access()
        refusal = denied(reader.write_lines, [LINE])
        assert refusal.status == 403 and refusal.user == INFLUX_USERS.reader_username
        assert "SMARTFARM_INFLUX_READER_USERNAME" in str(refusal)
        assert denied(reader.check_access, write=True).status == 403

        InfluxClient(foreign.settings, INFLUX_USERS.admin).drop_database()
        users = {row["user"]: row["admin"] for row in admin.query("SHOW USERS")}
        assert users[INFLUX_USERS.admin_username] is True
        assert users[settings.username] is False and users[INFLUX_USERS.reader_username] is False


def test_declaring_again_changes_nothing_and_mends_what_drifted(
    influx: InfluxClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = influx.settings
    assert not ensure_admin(settings, INFLUX_USERS.admin), "an admin exists: it is not made again"
    assert declare(settings, INFLUX_USERS) == []

    # An operator's drift: the writer's password changed in the settings, the reader granted ALL by hand.
    moved = settings.model_copy(update={"password": SecretStr("a-new-writer-password")})
    with InfluxClient(settings, INFLUX_USERS.admin) as admin:
        admin.query(f'GRANT ALL ON "{settings.database}" TO "{INFLUX_USERS.reader_username}"', write=True)
    refusal = denied(InfluxClient(moved).write_lines, [LINE])
    assert refusal.status == 401 and "SMARTFARM_INFLUX_USERNAME and SMARTFARM_INFLUX_PASSWORD" in str(refusal)
    try:
        changes = declare(moved, INFLUX_USERS)
        assert len(changes) == 2 and "password again" in changes[0] and "READ" in changes[1], changes
        assert declare(moved, INFLUX_USERS) == []
        with InfluxClient(moved) as writer:
            assert writer.write_lines([LINE]) == 1
        assert denied(influx.write_lines, [LINE]).status == 401, "the old password no longer logs in"
        with InfluxClient(settings, INFLUX_USERS.reader) as reader:
            assert denied(reader.write_lines, [LINE]).status == 403, "READ again"
    finally:
        declare(settings, INFLUX_USERS)  # the session's writer password back for the next tests

    # A wrong admin password is refused by name; no password shows in a message, a repr or a log line.
    wrong = INFLUX_USERS.model_copy(update={"admin_password": SecretStr("not-the-admins-password")})
    refusal = denied(declare, settings, wrong)
    assert refusal.status == 401 and "SMARTFARM_INFLUX_ADMIN_USERNAME and SMARTFARM_INFLUX_ADMIN_PASSWORD" in str(
        refusal
    )
    with pytest.raises(StorageError) as failed:
        influx.query("SET PASSWORD FOR \"nobody-here\" = 'hunter2-secret'", write=True)
    shown = " ".join(
        [str(refusal), repr(refusal), str(failed.value), repr(influx), repr(settings), repr(INFLUX_USERS), caplog.text]
    )
    for secret in (
        "hunter2-secret",
        "a-new-writer-password",
        "not-the-admins-password",
        settings.password.get_secret_value(),
        INFLUX_USERS.admin_password.get_secret_value(),
        INFLUX_USERS.reader_password.get_secret_value(),
    ):
        assert secret not in shown


@dataclass
class Counted:
    write_seconds: Histogram = field(default_factory=lambda: Histogram("w_s", "w", registry=None))
    write_lines: Histogram = field(default_factory=lambda: Histogram("w_l", "w", registry=None))
    write_failures: Counter = field(default_factory=lambda: Counter("w_f", "w", registry=None))


def test_a_writer_whose_login_is_refused_stops_at_once_rather_than_dead_lettering(
    influx: InfluxClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = influx.settings.model_copy(update={"password": SecretStr("a-wrong-password")})
    writer = Writer(wrong, chunk=2, metrics=Counted())
    try:
        with pytest.raises(StorageDenied, match="SMARTFARM_INFLUX_USERNAME and SMARTFARM_INFLUX_PASSWORD"):
            asyncio.run(writer.write([LINE, LINE, LINE], lambda: False))
    finally:
        writer.close()
    assert "a-wrong-password" not in caplog.text


def test_a_worker_whose_login_is_refused_does_not_start_and_says_which_settings(
    influx: InfluxClient,
    kafka_settings: KafkaSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = influx.settings.model_copy(update={"password": SecretStr("a-wrong-password")})
    for variable, value in (environment(wrong) | environment(kafka_settings)).items():
        monkeypatch.setenv(variable, value)
    assert main(["worker"]) == 2  # before it consumes anything
    said = capsys.readouterr()
    assert "SMARTFARM_INFLUX_USERNAME and SMARTFARM_INFLUX_PASSWORD" in said.err
    assert "a-wrong-password" not in said.out + said.err


def test_a_worker_started_before_influxdb_answers_waits_for_it(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    """Nothing answering at InfluxDB's address is transient (it restarts, or starts after the worker): the worker
    waits, saying so, rather than exiting."""
    nobody = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database=unique("t"))
    env = os.environ | environment(kafka_settings) | environment(nobody) | {"SMARTFARM_WORKER_METRICS_PORT": "0"}
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker"], env=env, stdout=out, stderr=out, cwd=tmp_path
        )
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("InfluxDB does not answer yet") < 2 and time.monotonic() < deadline:
            assert worker.poll() is None, f"the worker exited: {log.read_text()[-2000:]}"
            time.sleep(0.25)
        assert log.read_text().count("InfluxDB does not answer yet") >= 2, log.read_text()[-2000:]
        assert worker.poll() is None
    finally:
        worker.kill()
        worker.wait(10)
