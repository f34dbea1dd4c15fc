"""The simulated farm: weather, zones and devices advanced one tick at a time, with faults injected.

Pure: no clock, no network. ``FarmSimulation.step()`` advances simulated time by one reading interval and
returns what the devices publish in that tick, in order, with the faults it injected. The fleet
(``edge.fleet``) paces ticks in real or accelerated time and hands the messages to MQTT.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edge.faults import (
    CLOCK_RESET_TO,
    DRIFT,
    DURATION,
    MALFORMED_VARIANTS,
    SENSOR_FAULTS,
    SPIKE,
    Episode,
    FaultKind,
    FaultRates,
    FaultRecord,
    malformed_payload,
)
from edge.sensors import SensorErrors, clamp_to_sensor, true_value
from edge.soil import SimulatedZone
from edge.weather import Climate, FarmWeather, Weather
from smartfarm.layout import Layout, Placement, Sensor, SensorKind
from smartfarm.telemetry import Reading, Telemetry

BATTERY_FULL_V = 4.15
BATTERY_CUTOFF_V = 3.30
BATTERY_DRAIN_V_PER_H = 0.0006
SOLAR_CHARGE_V_PER_H = 0.006
"""What a node's small solar panel puts back per hour in full sun (1000 W/m2). Field nodes are solar-charged: a
clear summer day (about 7 kWh/m2) refills a day's drain (0.014 V) three times over, an overcast winter day
(about 1 kWh/m2) not quite, so a node lasts the season and only a battery fault kills one (without charging, the
whole farm fell silent about 57 days after the start)."""


@dataclass(frozen=True, slots=True)
class Message:
    """A telemetry message as a device publishes it."""

    farm: str
    device: str
    seq: int
    ts: datetime
    payload: bytes
    readings: tuple[Reading, ...]
    """What the payload says (also for a malformed payload: what it would have said)."""


@dataclass(slots=True)
class Tick:
    """What one tick produced."""

    time: datetime
    messages: list[Message] = field(default_factory=list)
    died: list[str] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    weather: dict[str, Weather] = field(default_factory=dict)


@dataclass(slots=True)
class SimulatedDevice:
    placement: Placement
    rng: random.Random
    errors: SensorErrors
    battery_v: float
    seq: int = 0
    alive: bool = True
    episodes: dict[FaultKind, Episode] = field(default_factory=dict)
    held_late: list[Message] = field(default_factory=list)
    held_swap: Message | None = None
    clock_rng: random.Random | None = None
    """Draws clock resets apart from ``rng``, so that a seed's other faults and values stay as they were."""
    clock_behind: timedelta | None = None
    """How far a reset clock is behind the true time, while it is."""
    clock_wrong_left: int = 0
    """Messages still to be stamped by the reset clock."""


def spike(kind: SensorKind, value: float, rng: random.Random) -> float:
    """``value`` thrown far off, in a direction the sensor's range leaves room for."""
    size = SPIKE[kind] * rng.uniform(1.0, 1.5)
    low, high = kind.physical_range
    room_up, room_down = high - value, value - low
    directions = [d for d, room in ((1, room_up), (-1, room_down)) if room >= size]
    direction = rng.choice(directions) if directions else (1 if room_up >= room_down else -1)
    return clamp_to_sensor(kind, value + direction * size)


class FarmSimulation:
    """Every farm of a layout, from a seed.

    Args:
        layout: the farm layout.
        seed: makes a run repeatable: same seed, same layout, same start, same data.
        start: simulated time of the first tick.
        interval_s: seconds of simulated time between a device's readings.
        rates: fault rates; ``FaultRates.none()`` for clean data.
        devices: the device ids this simulation publishes for (a shard of the fleet); all when None.
            Zones are simulated whole in every shard, so shards agree on the physics.
        climate: the climate weather is drawn from.
    """

    def __init__(
        self,
        layout: Layout,
        seed: int,
        start: datetime,
        interval_s: float = 300.0,
        rates: FaultRates | None = None,
        devices: Iterable[str] | None = None,
        climate: Climate | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.layout = layout
        self.seed = seed
        self.now = start - timedelta(seconds=interval_s)
        self.interval_s = interval_s
        self.rates = rates or FaultRates()
        self.weather = {f.id: FarmWeather(f, seed, climate) for f in layout.farms}
        self.zones = {(f.id, z.id): SimulatedZone.initial(z) for f in layout.farms for z in f.zones}
        self._depths: dict[tuple[str, str], tuple[float, ...]] = {}
        for farm in layout.farms:
            for zone in farm.zones:
                self._depths[(farm.id, zone.id)] = tuple(
                    sorted(
                        {
                            s.depth_cm
                            for d in farm.devices
                            if d.zone == zone.id
                            for s in d.sensors
                            if s.kind is SensorKind.SOIL_TEMPERATURE and s.depth_cm is not None
                        }
                    )
                )
        wanted = set(devices) if devices is not None else None
        self.devices: dict[str, SimulatedDevice] = {}
        for device_id, placement in layout.placements.items():
            if wanted is not None and device_id not in wanted:
                continue
            rng = random.Random(f"{seed}:device:{device_id}")
            self.devices[device_id] = SimulatedDevice(
                placement=placement,
                rng=rng,
                errors=SensorErrors(placement.device.sensors, rng),
                battery_v=BATTERY_FULL_V - rng.uniform(0, 0.1),
                clock_rng=random.Random(f"{seed}:clock:{device_id}"),
            )

    def irrigate(self, farm: str, zone: str, amount_mm: float) -> None:
        """Schedule irrigation on a zone (what its valve does when it accepts a recommendation)."""
        self.zones[(farm, zone)].irrigate(amount_mm)

    def step(self) -> Tick:
        """Advance one interval and return what the devices published."""
        self.now += timedelta(seconds=self.interval_s)
        tick = Tick(self.now)
        for farm in self.layout.farms:
            tick.weather[farm.id] = self.weather[farm.id].at(self.now, self.interval_s)
        for (farm_id, zone_id), zone in self.zones.items():
            zone.step(tick.weather[farm_id], self.interval_s, self._depths[(farm_id, zone_id)])
        for device in self.devices.values():
            if device.alive:
                self._device_tick(device, tick)
        return tick

    def finish(self) -> Tick:
        """End the run: publish what devices still hold and log the faults still in progress."""
        tick = Tick(self.now)
        for device in self.devices.values():
            if device.held_swap is not None:
                tick.messages.append(device.held_swap)
                device.held_swap = None
            tick.messages.extend(device.held_late)
            device.held_late.clear()
            for kind in list(device.episodes):
                self._close(device, kind, tick)
        return tick

    def _device_tick(self, device: SimulatedDevice, tick: Tick) -> None:
        """One reading interval of one device: its power and faults, its readings, its message and how it leaves."""
        if not self._powered(device, tick):
            return
        readings, spiked = self._read_sensors(device, tick)
        message = self._compose(device, readings, spiked, tick)
        for kind in (FaultKind.STUCK, FaultKind.DRIFT):
            if kind in device.episodes:
                self._advance(device, kind, tick)
        self._send(device, message, tick)

    def _powered(self, device: SimulatedDevice, tick: Tick) -> bool:
        """Drain the battery and start lasting faults; False when the device publishes nothing this tick (its
        battery died now, or it is in a dropout)."""
        hours = self.interval_s / 3600
        sun = tick.weather[device.placement.farm.id].solar_wm2 / 1000
        device.battery_v -= BATTERY_DRAIN_V_PER_H * hours
        if FaultKind.BATTERY_DEATH not in device.episodes:  # a failing cell no longer holds a charge
            device.battery_v = min(BATTERY_FULL_V, device.battery_v + SOLAR_CHARGE_V_PER_H * sun * hours)
        for kind in (FaultKind.STUCK, FaultKind.DRIFT, FaultKind.DROPOUT, FaultKind.LATE, FaultKind.BATTERY_DEATH):
            if kind not in device.episodes and device.rng.random() < self.rates.rate(kind):
                self._start_episode(device, kind, tick)
        death = device.episodes.get(FaultKind.BATTERY_DEATH)
        if death is not None:
            device.battery_v -= 0.08
            death.ticks_done += 1
        if device.battery_v < BATTERY_CUTOFF_V:
            self._die(device, tick)
            return False
        if FaultKind.DROPOUT in device.episodes:
            self._advance(device, FaultKind.DROPOUT, tick)
            return False
        self._maybe_reset_clock(device, tick)
        return True

    def _maybe_reset_clock(self, device: SimulatedDevice, tick: Tick) -> None:
        """Start a clock reset at its rate: the next few messages are stamped from ``CLOCK_RESET_TO`` on. Logged
        when it starts, with the messages it will stamp, so a recorder leaves them out as they are sent."""
        rng = device.clock_rng
        if device.clock_wrong_left or rng is None or not rng.random() < self.rates.clock_reset:
            return
        low, high = DURATION[FaultKind.CLOCK_RESET]
        device.clock_wrong_left = rng.randint(low, high)
        device.clock_behind = self.now - CLOCK_RESET_TO
        tick.faults.append(
            FaultRecord(
                fault=FaultKind.CLOCK_RESET,
                device=device.placement.device.id,
                seq=device.seq,
                ts=self.now,
                ticks=device.clock_wrong_left,
                detail=f"stamped from {CLOCK_RESET_TO:%Y-%m-%dT%H:%M:%SZ}",
            )
        )

    def _stamp(self, device: SimulatedDevice) -> datetime:
        """The time the device's clock reads now: the true time, or a reset clock's."""
        if not device.clock_wrong_left or device.clock_behind is None:
            return self.now
        device.clock_wrong_left -= 1
        return self.now - device.clock_behind

    def _read_sensors(self, device: SimulatedDevice, tick: Tick) -> tuple[list[Reading], Sensor | None]:
        """Every sensor's observed value with the device's stuck, drifting or spiking sensor applied; and which
        sensor spiked, if one did."""
        farm, zone = device.placement.farm.id, device.placement.zone.id
        weather = tick.weather[farm]
        zone_state = self.zones[(farm, zone)]
        spiked = self._pick_sensor(device) if device.rng.random() < self.rates.spike else None
        readings = []
        for sensor in device.placement.device.sensors:
            value = device.errors.observe(sensor, true_value(sensor, weather, zone_state, device.battery_v))
            value = self._faulty(device, sensor, value)
            if spiked is not None and spiked.id == sensor.id:
                value = spike(sensor.kind, value, device.rng)
            readings.append(Reading(sensor=sensor.id, kind=sensor.kind, value=value))
        return readings, spiked

    @staticmethod
    def _faulty(device: SimulatedDevice, sensor: Sensor, value: float) -> float:
        """``value`` as a stuck or drifting sensor reports it."""
        stuck = device.episodes.get(FaultKind.STUCK)
        if stuck is not None and stuck.sensor == sensor.id:
            if stuck.ticks_done == 0:
                stuck.value = value
            value = stuck.value
        drift = device.episodes.get(FaultKind.DRIFT)
        if drift is not None and drift.sensor == sensor.id:
            value = clamp_to_sensor(sensor.kind, value + drift.value * (drift.ticks_done + 1) / drift.ticks_total)
        return value

    def _compose(self, device: SimulatedDevice, readings: list[Reading], spiked: Sensor | None, tick: Tick) -> Message:
        """The telemetry message of this tick (malformed at its rate), with its spike and malformation logged."""
        placement = device.placement
        seq = device.seq
        device.seq += 1
        payload = Telemetry.create(
            device=placement.device.id, seq=seq, ts=self._stamp(device), readings=readings
        ).encode()
        if spiked is not None:
            tick.faults.append(self._record(FaultKind.SPIKE, device, seq, sensor=spiked.id))
        if device.rng.random() < self.rates.malformed:
            variant = device.rng.choice(MALFORMED_VARIANTS)
            payload = malformed_payload(variant, payload, device.rng)
            tick.faults.append(self._record(FaultKind.MALFORMED, device, seq, detail=variant))
        return Message(placement.farm.id, placement.device.id, seq, self.now, payload, tuple(readings))

    def _send(self, device: SimulatedDevice, message: Message, tick: Tick) -> None:
        """Hand ``message`` to the tick: held while the device is late, swapped with its successor, or doubled."""
        rng = device.rng
        if FaultKind.LATE in device.episodes:
            device.held_late.append(message)
            if self._advance(device, FaultKind.LATE, tick):
                tick.messages.extend(device.held_late)
                device.held_late.clear()
            return
        if device.held_swap is not None:
            held, device.held_swap = device.held_swap, None
            tick.messages.extend((message, held))
            return
        if rng.random() < self.rates.out_of_order:
            device.held_swap = message
            tick.faults.append(self._record(FaultKind.OUT_OF_ORDER, device, message.seq))
            return
        tick.messages.append(message)
        if rng.random() < self.rates.duplicate:
            tick.faults.append(self._record(FaultKind.DUPLICATE, device, message.seq))
            tick.messages.append(message)

    def _pick_sensor(self, device: SimulatedDevice) -> Sensor:
        candidates = [s for s in device.placement.device.sensors if s.kind is not SensorKind.BATTERY]
        return device.rng.choice(candidates or list(device.placement.device.sensors))

    def _start_episode(self, device: SimulatedDevice, kind: FaultKind, tick: Tick) -> None:
        low, high = DURATION.get(kind, (1, 1))
        episode = Episode(kind=kind, start=self.now, seq=device.seq, ticks_total=device.rng.randint(low, high))
        if kind in SENSOR_FAULTS:
            sensor = self._pick_sensor(device)
            episode.sensor = sensor.id
            if kind is FaultKind.DRIFT:
                episode.value = DRIFT[sensor.kind] * device.rng.choice((-1, 1))
        if kind is FaultKind.BATTERY_DEATH:
            episode.ticks_total = max(1, int((device.battery_v - BATTERY_CUTOFF_V) / 0.08) + 1)
        device.episodes[kind] = episode

    def _advance(self, device: SimulatedDevice, kind: FaultKind, tick: Tick) -> bool:
        """Count a tick of a lasting fault; log it and return True when it ends."""
        episode = device.episodes[kind]
        episode.ticks_done += 1
        if episode.ticks_done < episode.ticks_total:
            return False
        self._close(device, kind, tick)
        return True

    def _close(self, device: SimulatedDevice, kind: FaultKind, tick: Tick) -> None:
        episode = device.episodes.pop(kind)
        seq = device.seq if kind is FaultKind.DROPOUT else episode.seq
        tick.faults.append(
            FaultRecord(
                fault=kind,
                device=device.placement.device.id,
                seq=seq,
                ts=episode.start,
                ticks=max(1, episode.ticks_done),
                sensor=episode.sensor,
            )
        )

    def _die(self, device: SimulatedDevice, tick: Tick) -> None:
        device.alive = False
        if device.held_swap is not None:
            tick.messages.append(device.held_swap)
            device.held_swap = None
        if device.held_late:
            tick.messages.extend(device.held_late)
            device.held_late.clear()
        episode = device.episodes.get(FaultKind.BATTERY_DEATH)
        for kind in list(device.episodes):
            if kind is not FaultKind.BATTERY_DEATH:
                self._close(device, kind, tick)
        if episode is not None:
            self._close(device, FaultKind.BATTERY_DEATH, tick)
        tick.died.append(device.placement.device.id)

    def _record(
        self, kind: FaultKind, device: SimulatedDevice, seq: int, sensor: str | None = None, detail: str | None = None
    ) -> FaultRecord:
        return FaultRecord(
            fault=kind, device=device.placement.device.id, seq=seq, ts=self.now, ticks=1, sensor=sensor, detail=detail
        )
