"""Fault injection: each fault appears at its configured rate, shows in the data, and is in the ground truth."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from edge.faults import FaultKind, FaultRates, FaultRecord
from edge.simulator import FarmSimulation, Message
from smartfarm.errors import ContractError, RejectReason
from smartfarm.layout import load_layout, replicate
from smartfarm.telemetry import Telemetry

START = datetime(2026, 7, 1, tzinfo=UTC)
DEVICES, TICKS, RATE, INTERVAL = 20, 1000, 0.02, 300


def run(kind: FaultKind, rate: float = RATE) -> tuple[list[tuple[int, Message]], list[FaultRecord]]:
    rates = FaultRates.none().model_copy(update={kind.value: rate})
    sim = FarmSimulation(replicate(load_layout(), DEVICES), seed=1, start=START, interval_s=INTERVAL, rates=rates)
    sent: list[tuple[int, Message]] = []
    records: list[FaultRecord] = []
    for i in range(TICKS):
        tick = sim.step()
        sent += [(i, m) for m in tick.messages]
        records += tick.faults
    end = sim.finish()
    sent += [(TICKS, m) for m in end.messages]
    return sent, records + end.faults


def within_binomial(observed: int, trials: int, rate: float) -> bool:
    expected = trials * rate
    return abs(observed - expected) <= 4 * math.sqrt(expected * (1 - rate)) + 2


def tick_of(record: FaultRecord) -> int:
    return round((record.ts - START) / timedelta(seconds=INTERVAL))


@pytest.mark.parametrize("kind", [FaultKind.SPIKE, FaultKind.MALFORMED, FaultKind.DUPLICATE])
def test_message_faults_appear_at_their_rate(kind: FaultKind) -> None:
    sent, records = run(kind)
    produced = len({(m.device, m.seq) for _, m in sent})
    assert {r.fault for r in records} == {kind}
    assert within_binomial(len(records), produced, RATE), (len(records), produced * RATE)

    spiked = {(r.device, r.seq) for r in records}
    by_key = defaultdict(list)
    for _, m in sent:
        by_key[(m.device, m.seq)].append(m)
    for record in records:
        copies = by_key[(record.device, record.seq)]
        if kind is FaultKind.DUPLICATE:
            assert len(copies) == 2 and copies[0].payload == copies[1].payload
        elif kind is FaultKind.MALFORMED:
            with pytest.raises(ContractError) as caught:
                Telemetry.decode(copies[0].payload)
            assert caught.value.reason in (RejectReason.INVALID_JSON, RejectReason.INVALID_PAYLOAD)
            assert record.detail in ("bad_json", "wrong_types", "unknown_fields")
        else:
            value = next(r.value for r in copies[0].readings if r.sensor == record.sensor)
            neighbours = [
                next(r.value for r in by_key[(record.device, record.seq + d)][0].readings if r.sensor == record.sensor)
                for d in (-1, 1)
                if by_key.get((record.device, record.seq + d)) and (record.device, record.seq + d) not in spiked
            ]
            assert all(abs(value - n) > 5 * max(0.3, abs(n) * 0.05) for n in neighbours), (record, value, neighbours)


def test_out_of_order_messages_appear_at_their_rate_after_their_successor() -> None:
    sent, records = run(FaultKind.OUT_OF_ORDER)
    produced = len({(m.device, m.seq) for _, m in sent})
    # A held message is sent with the next one, which cannot itself be held.
    assert within_binomial(len(records), produced - len(records), RATE)
    order: dict[str, list[int]] = defaultdict(list)
    for _, m in sent:
        order[m.device].append(m.seq)
    for record in records:
        seqs = order[record.device]
        later = record.seq + 1
        if later in seqs:
            assert seqs.index(record.seq) == seqs.index(later) + 1


@pytest.mark.parametrize("kind", [FaultKind.STUCK, FaultKind.DRIFT, FaultKind.DROPOUT, FaultKind.LATE])
def test_lasting_faults_start_at_their_rate_and_show_in_the_data(kind: FaultKind) -> None:
    sent, records = run(kind)
    assert {r.fault for r in records} == {kind}
    busy = sum(r.ticks for r in records)
    # A lasting fault cannot start while it lasts: the ticks it covers are not chances for it to start.
    assert within_binomial(len(records), DEVICES * TICKS - busy + len(records), RATE), (len(records), busy)

    messages: dict[tuple[str, int], tuple[int, Message]] = {(m.device, m.seq): (i, m) for i, m in sent}
    for record in records:
        covered = [
            messages[(record.device, s)]
            for s in range(record.seq, record.seq + record.ticks)
            if (record.device, s) in messages
        ]
        if kind is FaultKind.STUCK:
            values = {next(r.value for r in m.readings if r.sensor == record.sensor) for _, m in covered}
            assert len(values) == 1, record
        elif kind is FaultKind.DRIFT and record.ticks >= 96:
            first, last = covered[0][1], covered[-1][1]
            sensor = record.sensor
            twin = [d for d in {m.device for _, m in sent} if d != record.device]
            assert first.ts < last.ts and sensor is not None and twin
        elif kind is FaultKind.DROPOUT:
            before = messages.get((record.device, record.seq - 1))
            after = messages.get((record.device, record.seq))
            # Back-to-back dropouts share the next sequence number: the silence is their sum.
            silent = sum(r.ticks for r in records if (r.device, r.seq) == (record.device, record.seq))
            if before and after:
                assert after[1].ts - before[1].ts == timedelta(seconds=INTERVAL * (silent + 1))
        elif kind is FaultKind.LATE:
            sent_at = {i for i, _ in covered}
            assert len(sent_at) == 1, "held messages are delivered together"
            assert all(i >= tick_of(record) + len(covered) - 1 for i, _ in covered)


def test_battery_death_starts_at_its_rate_and_silences_the_device() -> None:
    sent, records = run(FaultKind.BATTERY_DEATH, rate=0.0005)
    deaths = [r for r in records if r.fault is FaultKind.BATTERY_DEATH]
    assert deaths
    chances = sum(tick_of(r) + 1 for r in deaths) + (DEVICES - len(deaths)) * TICKS
    assert within_binomial(len(deaths), chances, 0.0005)
    last_seen = Counter({m.device: m.seq for _, m in sent})
    for record in deaths:
        voltages = [
            next(r.value for r in m.readings if r.kind == "battery") for _, m in sent if m.device == record.device
        ]
        assert voltages[-1] < 3.4 and voltages[-1] < voltages[0] - 0.3
        assert last_seen[record.device] == record.seq + record.ticks - 2
        assert all(i <= tick_of(record) + record.ticks for i, m in sent if m.device == record.device)


def test_ground_truth_records_are_json_lines() -> None:
    _, records = run(FaultKind.SPIKE, rate=0.01)
    for record in records[:20]:
        assert FaultRecord.model_validate_json(record.line()) == record


def test_solar_charged_nodes_last_a_whole_season_and_only_a_battery_fault_kills_one() -> None:
    # 120 days from 1 May at hourly readings, no faults: without charging, every node fell silent about 57 days in.
    sim = FarmSimulation(load_layout(), 3, datetime(2026, 5, 1, tzinfo=UTC), 3600, FaultRates.none())
    lowest: dict[str, float] = {}
    last_day: dict[str, datetime] = {}
    for _ in range(120 * 24):
        for m in sim.step().messages:
            volts = next(r.value for r in m.readings if r.kind == "battery")
            lowest[m.device] = min(volts, lowest.get(m.device, volts))
            last_day[m.device] = m.ts
    assert len(last_day) == len(load_layout().placements)
    end = datetime(2026, 5, 1, tzinfo=UTC) + timedelta(days=119)
    assert all(ts >= end for ts in last_day.values()), "every node still reports on the season's last day"
    assert all(v > 3.6 for v in lowest.values()), f"batteries stay well above the 3.3 V cutoff: {lowest}"


def test_a_reset_clock_stamps_its_next_messages_from_2000_and_the_stream_would_refuse_exactly_those() -> None:
    sent, records = run(FaultKind.CLOCK_RESET, rate=0.002)
    assert {r.fault for r in records} == {FaultKind.CLOCK_RESET}
    produced = len({(m.device, m.seq) for _, m in sent})
    assert within_binomial(len(records), produced, 0.002), "none starts while one lasts: a little under the rate"
    refused = {key for r in records for key in r.refused()}
    for _, m in sent:
        stamped = Telemetry.decode(m.payload).ts
        if (m.device, m.seq) in refused:
            assert stamped < datetime(2001, 1, 1, tzinfo=UTC) <= m.ts, "a reset clock reads 2000, the world does not"
        else:
            assert stamped == m.ts
    assert all(3 <= r.ticks <= 12 for r in records)


def test_clock_resets_leave_the_seed_s_other_faults_and_values_as_they_were() -> None:
    def season(clock_reset: float) -> tuple[list[tuple[str, int, tuple[float, ...]]], list[FaultRecord]]:
        rates = FaultRates(clock_reset=clock_reset)
        sim = FarmSimulation(load_layout(), seed=3, start=START, interval_s=INTERVAL, rates=rates)
        ticks = [sim.step() for _ in range(500)]
        values = [(m.device, m.seq, tuple(r.value for r in m.readings)) for t in ticks for m in t.messages]
        return values, [f for t in ticks for f in t.faults if f.fault is not FaultKind.CLOCK_RESET]

    assert season(0.0) == season(0.01)
