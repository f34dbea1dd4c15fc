"""The live status block of ``smartfarm up``: every fact the issue lists, numbers as read, gaps said."""

from __future__ import annotations

from datetime import UTC, datetime

from cli.status import Snapshot, render
from edge.fleet import FleetStats

NOW = datetime(2026, 12, 2, 19, 0, 5, tzinfo=UTC)


def _snapshot() -> Snapshot:
    return Snapshot(
        targets={"bridge": (1, 1), "worker": (1, 2)},
        devices_online=10,
        devices=12,
        messages_in=151_550,
        messages_per_s=1327.14,
        readings_stored=638_127,
        readings_per_s=7184.0,
        dead_letters={"worker/invalid_json": 48, "worker/invalid_payload": 102, "bridge/unknown_device": 0},
        lag={"clean-and-store": 149, "store-status": 0, "zones": 1_204_355},
        stalled=[("zones", "smartfarm.readings.clean:3", 1_803.0)],
        recommendations=[
            {
                "time": int(datetime(2026, 6, 24, 21, tzinfo=UTC).timestamp() * 1e9),
                "kind": "irrigation",
                "zone": "lettuce-south",
                "severity": "advisory",
                "message": "Irrigate 14.5 mm on Lettuce, south beds at 12:52 (in 22.9 h): " + "why " * 40,
            }
        ],
    )


def test_the_status_names_each_fact_with_its_figure() -> None:
    fleet = FleetStats(devices=12, online=11, acked=151_600, irrigations=3, irrigated_mm=44.5, cancelled=1)
    fleet.sim_time = datetime(2026, 6, 25, 1, 5, tzinfo=UTC)
    text = "\n".join(render(_snapshot(), NOW, fleet))
    assert "status at 19:00:05  simulated 2026-06-25 01:05 UTC" in text
    assert "bridge 1/1 up  worker 1/2 up" in text, "a worker not scraped is shown"
    assert "10/12 online" in text
    assert "151,550 (1,327.1/s)" in text
    assert "638,127 stored (7,184.0/s)" in text
    assert "consumer lag  clean-and-store 149, store-status 0, zones 1,204,355 records" in text, "every agent"
    assert "stalled       zones at smartfarm.readings.clean:3 for 1,803 s" in text
    assert "worker/invalid_json 48, worker/invalid_payload 102" in text
    assert "bridge/unknown_device" not in text, "a reason never seen is not listed"
    assert "3 irrigations applied by the valves (44 mm), 1 cancelled" in text
    assert "irrigation    2026-06-24 21:00 lettuce-south (advisory): Irrigate 14.5 mm" in text


def test_a_long_message_wraps_under_its_heading() -> None:
    lines = render(_snapshot(), NOW, None, width=80)
    advice = [line for line in lines if "lettuce-south" in line or line.startswith(" " * 16)]
    assert len(advice) > 2
    assert all(len(line) <= 80 for line in advice)


def test_what_could_not_be_asked_is_said_and_nothing_is_made_up() -> None:
    lines = render(Snapshot(devices=12, problems=["prometheus at http://127.0.0.1:9090: refused"]), NOW, None)
    text = "\n".join(lines)
    assert "no scrape yet" in text
    assert "-/12 online" in text
    assert "messages in   - (-)" in text
    assert "advice        none yet" in text
    assert "(unavailable: prometheus at http://127.0.0.1:9090: refused)" in text
    assert "consumer lag  -" in text
    assert "stalled       -" in text, "no stall is claimed when the lag could not be read"


def test_agents_keeping_up_show_no_stall() -> None:
    snap = Snapshot(devices=12, lag={"clean-and-store": 0, "store-status": 0, "zones": 0})
    assert "  stalled       none" in render(snap, NOW, None)
