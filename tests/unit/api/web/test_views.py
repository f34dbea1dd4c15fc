"""What the pages say, from rows as InfluxDB returns them: replaced advice, the next and last watering, the day's
alerts, the soil in a word, and whether a device is online."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.web.views import Moisture, advice_of, device_health, local_time, zone_card
from smartfarm.layout import load_layout
from storage.zones import DeviceSeen

NS = 1_000_000_000
NOW = datetime(2026, 6, 3, 12, tzinfo=UTC)
FARM = load_layout().farms[0]
ZONE = FARM.zones[0]


def row(id: str, kind: str, hours_ago: float, **fields: Any) -> dict[str, Any]:
    issued = NOW - timedelta(hours=hours_ago)
    return {
        "time": int(issued.timestamp() * NS),
        "id": id,
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


def test_advice_superseded_by_another_is_replaced_and_a_cancellation_says_do_not_water() -> None:
    rows = [
        row("c", "irrigation", 1, amount_mm=0.0, supersedes="b"),
        row("b", "irrigation", 5, amount_mm=20.0, start_at=at(3)),
        row("a", "frost", 6),
    ]
    cancel, planned, frost = advice_of(rows)
    assert (cancel.headline, cancel.is_cancellation, cancel.is_open_irrigation) == ("Do not water", True, False)
    assert planned.replaced and not planned.is_open_irrigation and planned.start_at == NOW + timedelta(hours=3)
    assert (frost.headline, frost.replaced, frost.issued_at) == ("Frost", False, NOW - timedelta(hours=6))


def test_a_zone_card_shows_the_next_and_the_last_watering_and_the_days_alerts() -> None:
    rows = [
        row("next", "irrigation", 1, amount_mm=12.0, start_at=at(4)),
        row("other-zone", "irrigation", 1, amount_mm=9.0, start_at=at(2), zone="elsewhere"),
        row("heat", "heat", 2),
        row("last", "irrigation", 20, amount_mm=15.0, start_at=at(-10)),
        row("old-frost", "frost", 30),
    ]
    state = {
        "time": int(NOW.timestamp() * NS),
        "moisture_pct": 18.0,
        "trigger_pct": 19.0,
        "field_capacity_pct": 30.0,
        "depletion_mm": 25.0,
        "raw_mm": 20.0,
    }
    card = zone_card(ZONE, state, advice_of(rows), NOW)
    assert card.next_irrigation is not None and card.next_irrigation.id == "next"
    assert card.last_irrigation is not None and card.last_irrigation.id == "last"
    assert [a.id for a in card.alerts] == ["heat"], "a day old at most"
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
        a.id: DeviceSeen(recent, recent, True),
        b.id: DeviceSeen(recent, recent, False),  # its last will said offline
        c.id: DeviceSeen(old, None, None),  # quiet for three hours
        d.id: DeviceSeen(recent, None, None),  # no status stored: its readings speak
    }
    health = device_health([a, b, c, d, e], seen, NOW)
    assert [(h.online, h.word) for h in health] == [
        (True, "Online"),
        (False, "Offline"),
        (False, "Offline"),
        (True, "Online"),
        (False, "Never heard"),
    ]


def test_times_are_the_farms_local_times() -> None:
    assert local_time(NOW, ZoneInfo("America/Los_Angeles")) == "Wed 3 Jun, 05:00"
