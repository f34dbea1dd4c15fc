"""The fleet: drives many device links from one loop, paced in real or accelerated time.

A source (the simulation, or a CSV replay) produces batches of messages stamped with simulated time; the loop
hands each batch to the devices when its time comes (simulated time / speed), pumps every link, applies the
irrigation the valves hold once simulated time reaches its start, and reports progress. One process drives
hundreds of devices; a fleet can be split over processes by sharding the device list.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Protocol

from edge.device import DeviceLink
from edge.faults import FaultRecord
from edge.replay import CsvReplaySource, Recorder
from edge.settings import EdgeSettings
from edge.simulator import FarmSimulation, Tick
from edge.valve import Valves
from smartfarm.credentials import device_password
from smartfarm.errors import ConfigError
from smartfarm.identifiers import valves_user
from smartfarm.layout import Layout, replicate
from smartfarm.settings import MqttSettings
from smartfarm.stop import Stop

log = logging.getLogger(__name__)


class Source(Protocol):
    """Where a fleet's messages come from."""

    def next(self) -> Tick | None:
        """The next batch, or None when the source is done."""

    def finish(self) -> Tick:
        """What is still held when the run ends."""

    def irrigate(self, farm: str, zone: str, amount_mm: float) -> None:
        """Water a zone (a simulation does; a replay cannot)."""


class SimulationSource:
    """Ticks of a ``FarmSimulation`` until ``duration`` of simulated time has passed (forever when zero)."""

    def __init__(self, simulation: FarmSimulation, duration: timedelta) -> None:
        self.simulation = simulation
        self.end = simulation.now + timedelta(seconds=simulation.interval_s) + duration if duration else None

    def next(self) -> Tick | None:
        if self.end is not None and self.simulation.now + timedelta(seconds=self.simulation.interval_s) >= self.end:
            return None
        return self.simulation.step()

    def finish(self) -> Tick:
        return self.simulation.finish()

    def irrigate(self, farm: str, zone: str, amount_mm: float) -> None:
        self.simulation.irrigate(farm, zone, amount_mm)


@dataclass(slots=True)
class FleetStats:
    """What the fleet has done so far."""

    devices: int = 0
    online: int = 0
    ticks: int = 0
    produced: int = 0
    published: int = 0
    acked: int = 0
    """Publishes the broker acknowledged as routed (birth and offline status included)."""
    unrouted: int = 0
    """Publishes the broker acknowledged with "no matching subscribers"; each is sent again (``edge.device``)."""
    buffered: int = 0
    dropped: int = 0
    reconnects: int = 0
    died: int = 0
    irrigations: int = 0
    """Irrigations applied (held ones whose start has not come are not counted)."""
    irrigated_mm: float = 0.0
    cancelled: int = 0
    """Irrigations a later recommendation superseded before they were applied."""
    expired: int = 0
    """Irrigations dropped because they came due after their ``valid_until`` (advice that arrived too late)."""
    lag_s: float = 0.0
    caught_up: bool = True
    """False while the fleet plays its catch-up (``EdgeSettings.catch_up``) as fast as the broker takes it."""
    sim_time: datetime | None = None
    faults: Counter[str] = field(default_factory=Counter)
    advice_wait_s: float = 0.0
    """Real seconds the catch-up was held for the pipeline's advice (``AdviceGate``)."""
    ran_ahead: int = 0
    """Times the catch-up ran on without advice that had stopped moving."""

    def line(self) -> str:
        when = self.sim_time.strftime("%Y-%m-%d %H:%M") if self.sim_time else "-"
        faults = sum(self.faults.values())
        return (
            f"sim {when}  online {self.online}/{self.devices}  sent {self.published}  acked {self.acked}  "
            f"buffered {self.buffered}  dropped {self.dropped}  "
            + (f"resent {self.unrouted}  " if self.unrouted else "")
            + f"faults {faults}  died {self.died}  "
            f"irrigated {self.irrigated_mm:.0f} mm  cancelled {self.cancelled}  "
            + (f"expired {self.expired}  " if self.expired else "")
            + (f"lag {self.lag_s:.1f}s" if self.caught_up else "catching up")
            + (f" (held {self.advice_wait_s:.0f}s for advice)" if self.advice_wait_s >= 1 else "")
            + (f"  ran ahead of advice {self.ran_ahead}x" if self.ran_ahead else "")
        )


@dataclass
class Pacer:
    """When each batch is due (monotonic seconds): as soon as the links take it during the catch-up, then one
    simulated second per ``1 / speed`` real seconds from where the catch-up ended."""

    speed: float
    catch_up: timedelta
    began: float = 0.0
    first: datetime | None = None
    catch_up_until: datetime | None = None

    def due(self, when: datetime, now: float, links_ready: Callable[[], bool]) -> float:
        if self.first is None:
            self.began, self.first = now, when
            self.catch_up_until = when + self.catch_up if self.catch_up else None
        if self.catch_up_until is not None:
            if when < self.catch_up_until:
                return now if links_ready() else now + 0.001
            self.catch_up_until, self.began, self.first = None, now, when  # caught up: paced from here
        return self.began + (when - self.first).total_seconds() / self.speed

    @property
    def catching_up(self) -> bool:
        return self.catch_up_until is not None


ADVICE_LEAD = timedelta(hours=6)
"""How far a catch-up's simulated time may run ahead of the advice made so far: a window closes a grace period
(15 min) after the readings past its end arrive, so an hour window's advice can come about 1 h 15 min after its
start; 2 h is about what a live farm at 3600x real time sees (a few seconds of pipeline latency)."""
ADVICE_PATIENCE_S = 20.0
"""Real seconds a catch-up waits for advice that does not move (no worker, a worker restarting) before it runs on
without it and says so: a farm with a stopped pipeline still sends its readings."""
SILENT_ZONE = timedelta(hours=6)
"""A zone this far behind the most advanced one is silent (its devices dead or gone) and holds nobody back."""


class AdviceGate:
    """Holds a catch-up's simulated clock within ``lead`` of the advice made so far, so that valves act on advice
    while it is current, as on a live farm.

    Without it, the simulation runs days ahead of the zone stage: each window is scored on soil that the advice of
    the windows before it has not watered yet (the valves are days behind), so every window recommends water again
    and a 48-day catch-up applied some 19,000 mm. Pure: ``horizon`` says how far each zone's advice has got (event
    time, seconds; zones with none yet absent), ``ready`` is asked with the monotonic clock.

    Args:
        horizon: each zone's watermark: the event time up to which its windows are closed and scored.
        lead: how far simulated time may run ahead of the slowest zone that speaks.
        patience_s: real seconds to wait on advice that does not move before running on without it, until it
            moves again (counted in ``ran_ahead``).
        poll_s: real seconds between asks of ``horizon`` (it may scrape the workers).
    """

    def __init__(
        self,
        horizon: Callable[[], Mapping[str, float]],
        lead: timedelta = ADVICE_LEAD,
        patience_s: float = ADVICE_PATIENCE_S,
        poll_s: float = 0.2,
    ) -> None:
        self.horizon = horizon
        self.lead_s = lead.total_seconds()
        self.patience_s = patience_s
        self.poll_s = poll_s
        self.waited_s = 0.0
        """Real seconds the catch-up was held for advice."""
        self.ran_ahead = 0
        """Times it ran on without advice that had stopped moving."""
        self._advised: float | None = None
        self._asked = float("-inf")
        self._moved: float | None = None
        self._held_since: float | None = None
        self._running_on = False

    @staticmethod
    def advised(marks: Mapping[str, float]) -> float | None:
        """The event time up to which every zone that speaks has its advice: the slowest one, less silent ones."""
        if not marks:
            return None
        ahead = max(marks.values())
        return min(m for m in marks.values() if m >= ahead - SILENT_ZONE.total_seconds())

    def ready(self, when: datetime, now: float) -> bool:
        """May the batch of simulated time ``when`` go out at monotonic ``now``?"""
        if self._moved is None:
            self._advised, self._moved = when.timestamp(), now  # the first batch sets the start
        if now - self._asked >= self.poll_s:
            self._asked = now
            seen = self.advised(self.horizon())
            if seen is not None and (self._advised is None or seen > self._advised):
                self._advised, self._moved, self._running_on = seen, now, False
        if self._advised is not None and when.timestamp() - self._advised <= self.lead_s:
            return self._release(now)
        if self._running_on:
            return self._release(now)
        if now - self._moved >= self.patience_s:
            log.warning("advice has not moved for %.0f s (a worker down?): the catch-up runs on", self.patience_s)
            self.ran_ahead += 1
            self._running_on = True
            return self._release(now)
        if self._held_since is None:
            self._held_since = now
        return False

    def _release(self, now: float) -> bool:
        if self._held_since is not None:
            self.waited_s += now - self._held_since
            self._held_since = None
        return True


class Fleet:
    """The device links (and valves) of one process.

    Args:
        layout: the farm layout (already grown to the fleet size).
        devices: the ids this process drives.
        mqtt: the broker.
        edge: pacing, buffering, credentials and logs.
        valves: run the zones' valves (the closed loop) in this process.
    """

    def __init__(
        self, layout: Layout, devices: list[str], mqtt: MqttSettings, edge: EdgeSettings, valves: bool = True
    ) -> None:
        self.edge = edge
        placements = layout.placements
        self.links = {
            d: DeviceLink(
                d, placements[d].farm.id, mqtt, device_password(edge.device_secret, d), edge.window, edge.buffer_limit
            )
            for d in devices
        }
        self.valves: Valves | None = None
        if valves:
            name = valves_user(edge.shard_index)
            password = device_password(edge.device_secret, name)
            self.valves = Valves([f.id for f in layout.farms], mqtt, name, password, edge.valves)
        self.stats = FleetStats(devices=len(self.links))
        self._ground_truth: IO[str] | None = None
        self._recorder: Recorder | None = None
        self._clock: datetime | None = None

    def start(self) -> None:
        """Open the ground-truth log and the recording, if asked for, and connect every link in the background."""
        if self.edge.ground_truth is not None:
            self._ground_truth = self.edge.ground_truth.open("a")
        if self.edge.record is not None:
            self._recorder = Recorder(self.edge.record)
        for link in self.links.values():
            link.start()
        if self.valves is not None:
            self.valves.start()

    def _deliver(self, batch: Tick) -> None:
        for message in batch.messages:
            link = self.links.get(message.device)
            if link is not None:
                link.send(message.payload)
        self.stats.produced += len(batch.messages)
        for device in batch.died:
            if device in self.links:
                self.links[device].kill()
                self.stats.died += 1
        self._log_faults(batch.faults)
        if self._recorder is not None:
            self._recorder.write(batch)
        self.stats.sim_time = batch.time

    def _log_faults(self, faults: list[FaultRecord]) -> None:
        for record in faults:
            self.stats.faults[record.fault.value] += 1
            if self._ground_truth is not None:
                self._ground_truth.write(record.line() + "\n")

    def _next(self, source: Source) -> Tick | None:
        """The source's next batch; its time is how far the source has simulated (the valves' clock)."""
        tick = source.next()
        if tick is not None:
            self._clock = tick.time
        return tick

    def _pump(self, source: Source) -> None:
        for link in self.links.values():
            link.pump()
        if self.valves is not None and self._clock is not None:
            # The source has simulated up to the pending batch, so water let in now flows from that time on.
            for irrigation in self.valves.due(self._clock):
                source.irrigate(irrigation.farm, irrigation.zone, irrigation.amount_mm)
                self.stats.irrigations += 1
                self.stats.irrigated_mm += irrigation.amount_mm
            self.stats.cancelled, self.stats.expired = self.valves.cancelled, self.valves.expired

    def _ready(self, when: datetime, advice: AdviceGate | None) -> bool:
        """May the catch-up's batch of ``when`` go out: the links take it and the advice is near enough."""
        if not self._links_ready():
            return False
        if advice is None:
            return True
        ready = advice.ready(when, time.monotonic())
        self.stats.advice_wait_s, self.stats.ran_ahead = advice.waited_s, advice.ran_ahead
        return ready

    def _links_ready(self) -> bool:
        """While catching up, the next batch goes out only once every connected link has at most a window's worth
        unacknowledged, so a fast simulation never overruns the devices' buffers (which drop the oldest)."""
        return all(link.buffered <= link.window for link in self.links.values() if link.connected and not link.killed)

    def _refresh(self) -> FleetStats:
        s = self.stats
        links = self.links.values()
        s.online = sum(1 for link in links if link.connected)
        s.published = sum(link.published for link in links)
        s.acked = sum(link.acked for link in links)
        s.unrouted = sum(link.unrouted for link in links)
        s.buffered = sum(link.buffered for link in links)
        s.dropped = sum(link.dropped for link in links)
        s.reconnects = sum(link.reconnects for link in links)
        return s

    def run(
        self,
        source: Source,
        stop: Stop,
        speed: float,
        on_progress: Callable[[FleetStats], None] | None = None,
        drain_timeout_s: float = 30.0,
        advice: AdviceGate | None = None,
    ) -> FleetStats:
        """Play ``source`` until it ends or ``stop`` is set; return the final statistics. ``advice`` holds a
        catch-up's clock near the advice made so far (the valves' closed loop); without it the catch-up runs as
        fast as the links take it."""
        self.start()
        pacer = Pacer(speed, self.edge.catch_up)
        next_progress = time.monotonic() + self.edge.progress_s
        pending = self._next(source)
        due = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if pending is not None:
                    due = pacer.due(pending.time, now, partial(self._ready, pending.time, advice))
                    self.stats.caught_up = not pacer.catching_up
                    if now >= due:
                        self._deliver(pending)
                        self.stats.ticks += 1
                        self.stats.lag_s = now - due
                        pending = self._next(source)
                self._pump(source)
                if now >= next_progress and on_progress is not None:
                    on_progress(self._refresh())
                    next_progress = now + self.edge.progress_s
                if pending is None:
                    break
                time.sleep(max(0.0, min(0.002, due - time.monotonic())) if now < due else 0)
            self._deliver(source.finish())
            deadline = time.monotonic() + drain_timeout_s
            while time.monotonic() < deadline and not stop.is_set():
                self._pump(source)
                if all(link.buffered == 0 for link in self.links.values() if not link.killed):
                    break
                time.sleep(0.005)
        finally:
            self.close()
        stats = self._refresh()
        if on_progress is not None:
            on_progress(stats)
        return stats

    def close(self) -> None:
        for link in self.links.values():
            link.close()
        if self.valves is not None:
            self.valves.close()
        if self._ground_truth is not None:
            self._ground_truth.close()
        if self._recorder is not None:
            self._recorder.close()


def prepare(layout: Layout, mqtt: MqttSettings, edge: EdgeSettings, replay: Path | None = None) -> tuple[Fleet, Source]:
    """The fleet of this process's shard and its source: the simulation, or the replay of a recording."""
    if edge.devices:
        layout = replicate(layout, edge.devices)
    index, count = edge.shard_index
    devices = [d for i, d in enumerate(layout.placements) if i % count == index]
    if not devices:
        raise ConfigError(f"shard {edge.shard} of a {len(layout.placements)}-device layout has no devices")
    source: Source
    if replay is not None:
        source = CsvReplaySource(replay, layout, set(devices))
    else:
        start = edge.start or _now_rounded(edge.interval_s)
        simulation = FarmSimulation(
            layout, edge.seed, start, edge.interval_s, edge.fault_rates, devices=devices, climate=edge.climate
        )
        source = SimulationSource(simulation, edge.duration)
    return Fleet(layout, devices, mqtt, edge, valves=replay is None), source


def _now_rounded(interval_s: float) -> datetime:
    now = datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(now - now % interval_s, UTC)
