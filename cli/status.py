"""The live status of ``smartfarm up``: what the pipeline itself reports, not what the simulator believes.

``collect`` asks Prometheus (the bridge's and the workers' metrics, which it scrapes) and InfluxDB (the devices'
last status, the latest recommendations) on loopback; ``render`` turns that snapshot into the lines the terminal
shows, pure, so its wording is tested without services.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cli.services.prometheus import instant_query
from edge.fleet import FleetStats
from smartfarm.errors import SmartFarmError
from storage.influx import InfluxClient
from stream.offsets import STALL_AFTER_S

RATE_WINDOW = "30s"
"""The window of the per-second rates (six scrapes at the repository's 5 s interval)."""


@dataclass
class Snapshot:
    """One look at the running stack."""

    targets: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per Prometheus job: targets up, targets scraped."""
    devices_online: int | None = None
    devices: int = 0
    messages_in: float | None = None
    messages_per_s: float | None = None
    readings_stored: float | None = None
    readings_per_s: float | None = None
    dead_letters: dict[str, float] = field(default_factory=dict)
    """Per stage and reason, e.g. ``worker/malformed``."""
    lag: dict[str, float] = field(default_factory=dict)
    """Records not yet processed, per agent (summed over its partitions and the workers)."""
    stalled: list[tuple[str, str, float]] = field(default_factory=list)
    """(agent, topic partition, seconds) of each partition that has not moved on for ``STALL_AFTER_S`` while
    records wait, longest first."""
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    """The latest recommendation of each kind, newest first."""
    problems: list[str] = field(default_factory=list)
    """What could not be asked, said rather than hidden."""


def _scalar(url: str, promql: str) -> float | None:
    result = instant_query(url, promql)
    return float(result[0]["value"][1]) if result else None


def collect(prometheus_url: str, influx: InfluxClient, devices: int) -> Snapshot:
    """A snapshot from Prometheus and InfluxDB; a source that does not answer becomes a line in ``problems``."""
    snap = Snapshot(devices=devices)
    try:
        for sample in instant_query(prometheus_url, "up"):
            job = sample["metric"].get("job", "?")
            up, seen = snap.targets.get(job, (0, 0))
            snap.targets[job] = (up + int(float(sample["value"][1]) == 1), seen + 1)
        snap.messages_in = _scalar(prometheus_url, "sum(smartfarm_bridge_received_total)")
        snap.messages_per_s = _scalar(prometheus_url, f"sum(rate(smartfarm_bridge_received_total[{RATE_WINDOW}]))")
        snap.readings_stored = _scalar(prometheus_url, "sum(smartfarm_worker_readings_stored_total)")
        snap.readings_per_s = _scalar(
            prometheus_url, f"sum(rate(smartfarm_worker_readings_stored_total[{RATE_WINDOW}]))"
        )
        for sample in instant_query(prometheus_url, "sum by (agent) (smartfarm_worker_consumer_lag)"):
            snap.lag[sample["metric"].get("agent", "?")] = float(sample["value"][1])
        stalled = f"max by (agent, tp) (smartfarm_worker_stalled_seconds) >= {STALL_AFTER_S:g}"
        snap.stalled = sorted(
            (
                (s["metric"].get("agent", "?"), s["metric"].get("tp", "?"), float(s["value"][1]))
                for s in instant_query(prometheus_url, stalled)
            ),
            key=lambda row: -row[2],
        )
        for stage in ("bridge", "worker"):
            for sample in instant_query(prometheus_url, f"sum by (reason) (smartfarm_{stage}_dead_lettered_total)"):
                snap.dead_letters[f"{stage}/{sample['metric'].get('reason', '?')}"] = float(sample["value"][1])
    except SmartFarmError as exc:
        snap.problems.append(str(exc))
    try:
        online = influx.query('SELECT last("online") AS online FROM "device_status" GROUP BY "device"')
        snap.devices_online = sum(1 for row in online if row.get("online"))
        snap.recommendations = sorted(
            influx.query(
                'SELECT "zone", "severity", "message", "amount_mm", "start_at" FROM "recommendation" '
                'GROUP BY "kind" ORDER BY time DESC LIMIT 1'
            ),
            key=lambda row: row["time"],
            reverse=True,
        )
    except SmartFarmError as exc:
        snap.problems.append(str(exc))
    return snap


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}/s"


def _farm(fleet: FleetStats) -> str:
    state = "catching up" if not fleet.caught_up else f"{fleet.lag_s:.1f} s behind its pace"
    if fleet.advice_wait_s >= 1:
        state += f" (held {fleet.advice_wait_s:.0f} s for the workers' advice)"
    return (
        f"  farm          {fleet.online}/{fleet.devices} connected, {fleet.acked:,} messages acknowledged, "
        f"{fleet.irrigations} irrigations applied by the valves ({fleet.irrigated_mm:.0f} mm), "
        f"{fleet.cancelled} cancelled, {fleet.expired} expired before they came due; {state}"
    )


def render(snap: Snapshot, now: datetime, fleet: FleetStats | None, width: int = 110) -> list[str]:
    """The status block, one line per fact; a recommendation's message is wrapped to ``width``. ``fleet`` is the
    simulated farm's own count (what it sent, what its valves did), shown beside what the pipeline reports."""
    sim_time = fleet.sim_time if fleet else None
    clock = f"  simulated {sim_time:%Y-%m-%d %H:%M} UTC" if sim_time else ""
    lines = [f"status at {now:%H:%M:%S}{clock}"]
    services = "  ".join(f"{job} {up}/{seen} up" for job, (up, seen) in sorted(snap.targets.items()))
    lines.append(f"  services      {services or 'no scrape yet'}")
    online = "-" if snap.devices_online is None else str(snap.devices_online)
    lines.append(f"  devices       {online}/{snap.devices} online")
    if fleet is not None:
        lines.append(_farm(fleet))
    lines.append(f"  messages in   {_count(snap.messages_in)} ({_rate(snap.messages_per_s)})")
    lines.append(f"  readings      {_count(snap.readings_stored)} stored ({_rate(snap.readings_per_s)})")
    lag = ", ".join(f"{agent} {_count(records)}" for agent, records in sorted(snap.lag.items()))
    lines.append(f"  consumer lag  {lag + ' records' if lag else '-'}")
    stalls = ", ".join(f"{agent} at {tp} for {seconds:,.0f} s" for agent, tp, seconds in snap.stalled)
    lines.append(f"  stalled       {stalls or 'none'}" if snap.lag or snap.stalled else "  stalled       -")
    letters = ", ".join(f"{reason} {count:,.0f}" for reason, count in sorted(snap.dead_letters.items()) if count)
    lines.append(f"  dead letters  {letters or 'none'}")
    if not snap.recommendations:
        lines.append("  advice        none yet")
    for rec in snap.recommendations:
        when = datetime.fromtimestamp(rec["time"] / 1e9, UTC)
        head = (
            f"  {rec.get('kind', '?'):<13} {when:%Y-%m-%d %H:%M} {rec.get('zone', '?')} ({rec.get('severity', '?')}): "
        )
        lines += textwrap.wrap(
            str(rec.get("message", "")), width=width, initial_indent=head, subsequent_indent=" " * 16
        )
    lines += [f"  (unavailable: {problem})" for problem in snap.problems]
    return lines
