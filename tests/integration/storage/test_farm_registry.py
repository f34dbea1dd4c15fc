"""The farm registry on SQLite and on a real PostgreSQL, migrated by Alembic: the layout file in and out unchanged,
a device dropped from the file retired and kept, ids of another farm refused, API tokens hashed at rest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from cli.main import main
from cli.services.postgres import PostgreSQL
from smartfarm.errors import ConfigError, ServiceError
from smartfarm.layout import Device, Farm, Layout, load_layout, parse_layout
from smartfarm.lorawan import LorawanBinding
from storage.registry.store import Conflict, FarmRegistry, Missing, Scope
from tests.helpers import unique


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FarmRegistry]:
    if request.param == "sqlite":
        made = FarmRegistry.at(tmp_path / "registry.db")
    else:
        postgres: PostgreSQL = request.getfixturevalue("postgresql")
        made = FarmRegistry(postgres.create_database(unique("r")))
    made.migrate()
    yield made
    made.close()


def test_a_layout_goes_in_and_comes_back_the_same(registry: FarmRegistry) -> None:
    layout = load_layout()
    registry.import_layout(layout)
    assert registry.layout() == layout
    registry.import_layout(layout)  # again: nothing doubles
    assert registry.layout() == layout
    registry.migrate()  # an up-to-date schema migrates to itself
    assert registry.layout() == layout


def test_a_device_the_file_drops_is_retired_and_comes_back_when_listed_again(registry: FarmRegistry) -> None:
    layout = load_layout()
    farm = layout.farms[0]
    gone = farm.devices[0]
    fewer = Layout(farms=(farm.model_copy(update={"devices": farm.devices[1:]}),))
    registry.import_layout(layout)
    registry.import_layout(fewer)
    assert [d.id for d in registry.layout().farms[0].devices] == [d.id for d in farm.devices[1:]]
    with registry.session() as s:
        retired = s.execute(text("SELECT retired_at FROM devices WHERE id = :id"), {"id": gone.id}).scalar_one()
    assert retired is not None, "retired, not deleted: its readings keep their device"
    registry.import_layout(layout)
    assert registry.layout() == layout


def test_a_device_id_of_another_farm_is_refused(registry: FarmRegistry) -> None:
    layout = load_layout()
    registry.import_layout(layout)
    farm = layout.farms[0]
    other = farm.model_copy(update={"id": "other-farm", "devices": farm.devices[:1]})
    with pytest.raises(ConfigError, match="already registered to another farm"):
        registry.import_layout(Layout(farms=(other,)))
    assert registry.layout() == layout, "nothing of the refused import was kept"


def test_changes_are_published_as_the_farm_they_leave_and_undone_when_publishing_fails(
    registry: FarmRegistry,
) -> None:
    layout = load_layout()
    registry.import_layout(layout)
    farm = layout.farms[0]
    published: list[Farm] = []
    zone = farm.zones[0].model_copy(update={"id": "olive-grove", "name": "Olives"})
    after = registry.add_zone(farm.id, zone, published.append)
    assert after.zones[-1] == zone and published == [after] and registry.layout().farms[0] == after

    device = Device(id="soil-olive-1", zone="olive-grove", sensors=farm.devices[1].sensors)
    after = registry.register_device(farm.id, device, published.append)
    assert after.devices[-1] == device and published[-1] == after

    def kafka_down(_farm: Farm) -> None:
        raise ServiceError("Kafka did not take it")

    with pytest.raises(ServiceError):
        registry.retire_device(farm.id, device.id, kafka_down)
    assert registry.layout().farms[0].devices[-1] == device, "a change not published is not made"

    after = registry.retire_device(farm.id, device.id, published.append)
    assert device.id not in {d.id for d in after.devices} and published[-1] == after
    with pytest.raises(Conflict, match="never reused"):
        registry.register_device(farm.id, device, published.append)
    with pytest.raises(Conflict, match="already has a zone"):
        registry.add_zone(farm.id, zone, published.append)
    with pytest.raises(Missing, match="no zone 'nowhere'"):
        registry.register_device(farm.id, device.model_copy(update={"id": "x-1", "zone": "nowhere"}), published.append)
    with pytest.raises(Missing, match="no farm"):
        registry.add_zone("no-such-farm", zone, published.append)
    assert len(published) == 3


def test_tokens_are_shown_once_kept_hashed_scoped_and_revocable(registry: FarmRegistry) -> None:
    registry.import_layout(load_layout())
    farm = load_layout().farms[0].id
    token = registry.issue_token(farm, "irrigation controller", [Scope.READ, Scope.WRITE])
    assert token.startswith("sft_") and len(token) > 40
    with registry.session() as s:
        stored = s.execute(text("SELECT token_sha256 FROM api_clients")).scalar_one()
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored
    client = registry.client(token)
    assert client is not None and client.farm == farm and client.scopes == {Scope.READ, Scope.WRITE}
    assert registry.client(token + "x") is None
    registry.revoke(client.id)
    assert registry.client(token) is None
    with pytest.raises(ConfigError, match="no farm"):
        registry.issue_token("no-such-farm", "x", [Scope.READ])
    with pytest.raises(ConfigError, match="at least one scope"):
        registry.issue_token(farm, "x", [])


def test_an_empty_registry_names_the_fix(registry: FarmRegistry) -> None:
    with pytest.raises(ConfigError, match="smartfarm layout import"):
        registry.layout()


def test_smartfarm_layout_imports_and_exports_the_file(
    registry: FarmRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = registry.url
    assert main(["layout", "import", "--url", url]) == 0
    assert "imported 1 farm(s)" in capsys.readouterr().out
    out = tmp_path / "exported.yaml"
    assert main(["layout", "export", "--url", url, "--out", str(out)]) == 0
    assert parse_layout(out.read_text()) == load_layout()
    assert main(["layout", "import", "--url", url, "--layout", str(out)]) == 0, "an export imports back"
    assert registry.layout() == load_layout()


def test_an_unreachable_registry_names_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://smartfarm@127.0.0.1:1/nowhere"
    assert main(["layout", "export", "--url", url]) == 2
    assert "cannot be reached" in capsys.readouterr().err


def test_a_registry_of_the_first_schema_migrates_to_lorawan_devices_keeping_its_farms(tmp_path: Path) -> None:
    made = FarmRegistry.at(tmp_path / "old.db")
    try:
        made.migrate("0001")
        made.import_layout(load_layout())
        with made.session() as s:
            tables = {r[0] for r in s.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
        assert "lorawan_devices" not in tables
        made.migrate()
        assert made.layout() == load_layout()
        device = load_layout().farms[0].devices[0]
        made.bind_lorawan(load_layout().farms[0].id, device.id, LorawanBinding(dev_eui="0101010101010101"))
        assert made.lorawan_device(load_layout().farms[0].id, "0101010101010101") is not None
    finally:
        made.close()


def test_a_lorawan_device_is_bound_found_by_its_network_servers_names_and_never_twice(registry: FarmRegistry) -> None:
    layout = load_layout()
    registry.import_layout(layout)
    farm = layout.farms[0]
    first, second = farm.devices[0].id, farm.devices[1].id
    lpp = LorawanBinding(
        dev_eui="00AA00AA00AA00AA", tts_device_id="node-1", decoder="cayenne_lpp", fields={"3": "st-15"}
    )
    registry.bind_lorawan(farm.id, first, lpp)
    assert registry.lorawan(farm.id, first) == lpp
    assert registry.lorawan_device(farm.id, "00aa00aa00aa00aa") == (first, lpp)
    assert registry.lorawan_device(farm.id, None, "node-1") == (first, lpp)
    assert registry.lorawan_device(farm.id, "1111111111111111", "node-1") == (first, lpp), "the id when the EUI fails"
    assert registry.lorawan_device("other-farm", "00aa00aa00aa00aa") is None, "another farm's token finds nothing"
    with pytest.raises(Conflict, match=f"already bound to {first}"):
        registry.bind_lorawan(farm.id, second, LorawanBinding(dev_eui="00aa00aa00aa00aa"))
    with pytest.raises(Conflict, match=f"already bound to {first}"):
        registry.bind_lorawan(farm.id, second, LorawanBinding(tts_device_id="node-1"))
    with pytest.raises(Missing, match="no active device"):
        registry.bind_lorawan("other-farm", first, LorawanBinding(dev_eui="2222222222222222"))
    decoded = LorawanBinding(dev_eui="00aa00aa00aa00aa", fields={"soil.vwc": "sm-15"})
    registry.bind_lorawan(farm.id, first, decoded)  # bound again: replaced, not doubled
    assert registry.lorawan_device(farm.id, "00aa00aa00aa00aa") == (first, decoded)
    assert registry.lorawan_device(farm.id, None, "node-1") is None
    registry.import_layout(Layout(farms=(farm.model_copy(update={"devices": farm.devices[1:]}),)))
    assert registry.lorawan_device(farm.id, "00aa00aa00aa00aa") is None, "a retired device takes no uplinks"
    registry.import_layout(layout)
    assert registry.lorawan_device(farm.id, "00aa00aa00aa00aa") == (first, decoded), "and takes them again when back"
