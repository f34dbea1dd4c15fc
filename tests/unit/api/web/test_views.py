"""What the pages say, from rows as InfluxDB returns them: where advice stands, the next and last watering, the
day's alerts, the soil in a word, and whether a device is online."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.web.views import Moisture, advice_of, device_health, local_time, zone_card
from smartfarm.layout import SensorKind, load_layout
from smartfarm.records import AdviceStatus

NS = 1_000_000_000
NOW = datetime(2026, 6, 3, 12, tzinfo=UTC)
FARM = load_layout().farms[0]
ZONE = FARM.zones[0]


CANCEL, PLANNED, ACCEPTED, DECLINED, FROST, HEAT, OTHER_ZONE = (uuid.UUID(int=i) for i in range(1, 8))


def row(id: uuid.UUID, kind: str, hours_ago: float, **fields: Any) -> dict[str, Any]:
    issued = NOW - timedelta(hours=hours_ago)
    return {
        "time": int(issued.timestamp() * NS),
        "id": str(id),
        "zone": ZONE.id,
        "kind": kind,
        "severity": "advisory",
        "message": f"{kind} {id}",
        "model": "fao56-baseline@1",
        "confidence": 0.9,
        **fields,
    }


def at(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


def decision(status: str, hours_ago: float) -> dict[str, Any]:
    return {"status": status, "time": int((NOW - timedelta(hours=hours_ago)).timestamp() * NS), "decided_by": "office"}


def test_advice_stands_as_decided_or_replaced_and_a_cancellation_says_do_not_water() -> None:
    rows = [
        row(CANCEL, "irrigation", 1, amount_mm=0.0, supersedes=str(PLANNED)),
        row(PLANNED, "irrigation", 5, amount_mm=20.0, start_at=at(3)),
        row(ACCEPTED, "irrigation", 6, amount_mm=10.0, start_at=at(1)),
        row(DECLINED, "irrigation", 7, amount_mm=10.0, start_at=at(2)),
        row(FROST, "frost", 6),
    ]
    decided = {str(ACCEPTED): decision("accepted", 4), str(DECLINED): decision("declined", 5)}
    cancel, planned, accepted, declined, frost = advice_of(rows, decided, {str(PLANNED)})
    assert (cancel.headline, cancel.is_cancellation, cancel.is_watering, cancel.is_decidable) == (
        "Do not water",
        True,
        False,
        False,
    )
    assert planned.issued.status is AdviceStatus.CANCELLED and not planned.is_planned and not planned.is_decidable
    assert planned.issued.start_at == NOW + timedelta(hours=3)
    assert accepted.is_planned and not accepted.is_decidable and accepted.issued.decided_by == "office"
    assert not declined.is_planned and not declined.is_decidable
    assert (frost.headline, frost.issued.status, frost.issued.issued_at) == (
        "Frost",
        AdviceStatus.OPEN,
        NOW - timedelta(hours=6),
    )
    (fresh,) = advice_of([row(PLANNED, "irrigation", 5, amount_mm=20.0, start_at=at(3), valid_until=at(7))], {}, set())
    assert fresh.is_decidable and fresh.is_planned
    assert fresh.stands_at(NOW + timedelta(hours=7)) and not fresh.stands_at(NOW + timedelta(hours=7, seconds=1))


def test_a_zone_card_shows_the_next_and_the_last_watering_and_the_days_alerts() -> None:
    rows = [
        row(PLANNED, "irrigation", 1, amount_mm=12.0, start_at=at(4)),
        row(DECLINED, "irrigation", 1, amount_mm=14.0, start_at=at(5)),
        row(OTHER_ZONE, "irrigation", 1, amount_mm=9.0, start_at=at(2), zone="elsewhere"),
        row(HEAT, "heat", 2),
        row(ACCEPTED, "irrigation", 20, amount_mm=15.0, start_at=at(-10)),
        row(FROST, "frost", 30),
    ]
    state = {
        "time": int(NOW.timestamp() * NS),
        "moisture_pct": 18.0,
        "trigger_pct": 19.0,
        "field_capacity_pct": 30.0,
        "depletion_mm": 25.0,
        "raw_mm": 20.0,
    }
    decided = {str(ACCEPTED): decision("accepted", 19), str(DECLINED): decision("declined", 0.5)}
    card = zone_card(ZONE, state, advice_of(rows, decided, set()), NOW)
    assert card.next_irrigation is not None and card.next_irrigation.issued.id == PLANNED, "not the declined one"
    assert card.last_irrigation is not None and card.last_irrigation.issued.id == ACCEPTED
    assert [a.issued.id for a in card.alerts] == [HEAT], "a day old at most"
    assert card.word == Moisture.DRY and card.gauge == (48.0, pytest.approx(50.666, abs=1e-3))
    assert zone_card(ZONE, None, [], NOW).word == "No reading yet"


@pytest.mark.parametrize(
    ("moisture", "depletion", "word"),
    [(18.9, 15.0, Moisture.DRY), (19.5, 17.0, Moisture.NEAR), (19.5, 16.0, Moisture.GOOD), (25.0, 0.0, Moisture.GOOD)],
)
def test_the_soil_in_a_word(moisture: float, depletion: float, word: str) -> None:
    state = {
        "time": 0,
        "moisture_pct": moisture,
        "trigger_pct": 19.0,
        "field_capacity_pct": 30.0,
        "depletion_mm": depletion,
        "raw_mm": 20.0,
    }
    assert zone_card(ZONE, state, [], NOW).word == word


def test_a_device_is_online_when_its_status_says_so_and_it_sent_a_reading_within_the_hour() -> None:
    a, b, c, d, e = FARM.devices[:5]
    recent, old = (NOW - timedelta(minutes=20)).timestamp(), (NOW - timedelta(hours=3)).timestamp()
    seen = {
        a.id: {SensorKind.SOIL_MOISTURE: (recent, 21.0), SensorKind.BATTERY: (old, 3.9)},
        b.id: {SensorKind.SOIL_MOISTURE: (recent, 20.0)},
        c.id: {SensorKind.AIR_TEMPERATURE: (old, 12.0)},  # quiet for three hours
        d.id: {SensorKind.AIR_TEMPERATURE: (recent, 12.0)},
    }
    statuses = {
        a.id: (recent, True, False),
        b.id: (recent, False, True),  # gone, by its last will
    }  # c and d: no status stored, their readings speak
    health = device_health([a, b, c, d, e], seen, statuses, NOW)
    assert [(h.online, h.word) for h in health] == [
        (True, "Online"),
        (False, "Offline"),
        (False, "Offline"),
        (True, "Online"),
        (False, "Never heard"),
    ]
    assert health[0].last_reading == NOW - timedelta(minutes=20) and health[0].battery_v == 3.9
    assert health[1].battery_v is None and health[4].last_reading is None


def test_times_are_the_farms_local_times() -> None:
    assert local_time(NOW, ZoneInfo("America/Los_Angeles")) == "Wed 3 Jun, 05:00"
