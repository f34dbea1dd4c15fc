"""What the farmer's pages show, from what InfluxDB holds: pure, so the words and rules are tested without a server.

Times on the pages are the farm's local times. "Now" on a farm is the end of its newest scored hour
(``api.web.pages.farm_now``), not the wall clock: a simulated or replayed season, or a farm whose data stopped,
is shown as of its own latest data, and the page says when that was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from api.advice import IssuedAdvice, as_issued
from api.deps import instant
from smartfarm.layout import Device, SensorKind, Zone
from smartfarm.records import AdviceStatus, RecommendationKind

ALERT_KINDS = (
    RecommendationKind.FROST,
    RecommendationKind.HEAT,
    RecommendationKind.DISEASE_RISK,
    RecommendationKind.SENSOR_FAULT,
)
"""The kinds a zone card shows as alerts (irrigation has its own line; harvest is in the inbox)."""

ALERTS_WITHIN = timedelta(hours=24)
"""How recent an alert must be to show on a zone card."""

QUIET_AFTER = timedelta(hours=1)
"""A device with no reading for this long before the farm's latest hour is shown as quiet, whatever its status."""

HEADLINES = {
    RecommendationKind.IRRIGATION: "Water",
    RecommendationKind.SENSOR_FAULT: "Check a sensor",
    RecommendationKind.FROST: "Frost",
    RecommendationKind.HEAT: "Heat",
    RecommendationKind.DISEASE_RISK: "Disease risk",
    RecommendationKind.HARVEST: "Harvest",
}
"""A recommendation's kind in a farmer's words."""


def local_time(at: datetime, tz: ZoneInfo) -> str:
    """ "Tue 2 Jun, 14:05" in the farm's time zone."""
    local = at.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"


@dataclass(frozen=True, slots=True)
class Advice:
    """A recommendation as the pages show it: as issued and where it stands (the JSON inbox's own
    ``api.advice.IssuedAdvice``), with the words and tests the pages need."""

    issued: IssuedAdvice

    @property
    def id(self) -> str:
        return str(self.issued.id)

    @property
    def headline(self) -> str:
        return "Do not water" if self.is_cancellation else HEADLINES[self.issued.kind]

    @property
    def is_cancellation(self) -> bool:
        i = self.issued
        return i.kind is RecommendationKind.IRRIGATION and i.supersedes is not None and not i.amount_mm

    @property
    def is_watering(self) -> bool:
        """An irrigation with water to give."""
        return self.issued.kind is RecommendationKind.IRRIGATION and bool(self.issued.amount_mm)

    @property
    def is_planned(self) -> bool:
        """Water that is coming: an irrigation open or accepted (not declined, replaced or cancelled)."""
        return self.is_watering and self.issued.status in (AdviceStatus.OPEN, AdviceStatus.ACCEPTED)

    @property
    def is_decidable(self) -> bool:
        """An irrigation nobody has answered yet, and no later advice replaced."""
        return self.is_watering and self.issued.status is AdviceStatus.OPEN

    def stands_at(self, now: datetime) -> bool:
        """Whether the advice still stands at ``now`` (its ``valid_until`` not passed)."""
        return self.issued.valid_until is None or self.issued.valid_until >= now


def advice_of(rows: Iterable[dict[str, Any]], decided: dict[str, dict[str, Any]], replaced: set[str]) -> list[Advice]:
    """The rows of ``storage.zones.recommendations`` as advice, in their order, each standing as its newest
    decision (``storage.zones.decisions``) or a later recommendation (``superseded``) says: the JSON inbox's rule."""
    return [Advice(as_issued(r, decided, replaced)) for r in rows]


class Moisture:
    """How the soil stands against its irrigation trigger, in words and as a gauge."""

    DRY = "Needs water"
    NEAR = "Getting dry"
    GOOD = "Fine"


@dataclass(frozen=True, slots=True)
class ZoneCard:
    """One zone on the farm page."""

    zone: Zone
    at: datetime | None
    moisture_pct: float | None
    trigger_pct: float | None
    field_capacity_pct: float | None
    depletion_mm: float | None
    raw_mm: float | None
    next_irrigation: Advice | None
    """The newest planned irrigation (open or accepted) whose valve opens at or after the farm's now."""
    last_irrigation: Advice | None
    """The newest planned irrigation whose time had come by the farm's now."""
    alerts: Sequence[Advice]

    @property
    def word(self) -> str:
        """The soil in a word: under the trigger, within a fifth of RAW above it, or fine."""
        if self.moisture_pct is None or self.trigger_pct is None:
            return "No reading yet"
        if self.moisture_pct < self.trigger_pct:
            return Moisture.DRY
        if self.depletion_mm is not None and self.raw_mm and self.depletion_mm > 0.8 * self.raw_mm:
            return Moisture.NEAR
        return Moisture.GOOD

    @property
    def gauge(self) -> tuple[float, float] | None:
        """The moisture and the trigger as percentages of the gauge (0 to field capacity and a quarter more)."""
        if self.moisture_pct is None or self.trigger_pct is None or not self.field_capacity_pct:
            return None
        top = self.field_capacity_pct * 1.25
        return min(100.0, 100 * self.moisture_pct / top), min(100.0, 100 * self.trigger_pct / top)


def zone_card(zone: Zone, state: Mapping[str, Any] | None, advice: Sequence[Advice], now: datetime) -> ZoneCard:
    """A zone's card: its newest state, its next and its last open irrigation, and its alerts of the last day
    (``advice``: the farm's recent recommendations, newest first)."""
    ours = [a for a in advice if a.issued.zone == zone.id]
    alerts = [a for a in ours if a.issued.kind in ALERT_KINDS and now - a.issued.issued_at <= ALERTS_WITHIN]
    planned = [a for a in ours if a.is_planned]
    return ZoneCard(
        zone=zone,
        at=instant(state["time"]) if state else None,
        moisture_pct=state.get("moisture_pct") if state else None,
        trigger_pct=state.get("trigger_pct") if state else None,
        field_capacity_pct=state.get("field_capacity_pct") if state else None,
        depletion_mm=state.get("depletion_mm") if state else None,
        raw_mm=state.get("raw_mm") if state else None,
        next_irrigation=next((a for a in planned if a.issued.start_at is None or a.issued.start_at >= now), None),
        last_irrigation=next((a for a in planned if a.issued.start_at is not None and a.issued.start_at < now), None),
        alerts=alerts,
    )


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """One device on the device health page."""

    device: Device
    last_reading: datetime | None
    online: bool
    battery_v: float | None

    @property
    def word(self) -> str:
        if self.last_reading is None:
            return "Never heard"
        return "Online" if self.online else "Offline"


def device_health(
    devices: Iterable[Device],
    seen: Mapping[str, Mapping[SensorKind, tuple[float, float]]],
    statuses: Mapping[str, tuple[float, bool, bool]],
    now: datetime,
) -> list[DeviceHealth]:
    """Each device with its newest reading (``seen``: ``storage.zones.last_by_device``) and battery, online when
    its newest status (``statuses``: ``storage.zones.device_statuses``) says so, or with none stored when it has
    sent a reading, and its newest reading is at most ``QUIET_AFTER`` before ``now``."""
    out = []
    for device in devices:
        kinds = seen.get(device.id, {})
        newest = max((t for t, _ in kinds.values()), default=None)
        last = datetime.fromtimestamp(newest, UTC) if newest is not None else None
        status = statuses.get(device.id)
        said_online = status[1] if status else last is not None
        battery = kinds.get(SensorKind.BATTERY)
        online = bool(said_online and last and now - last <= QUIET_AFTER)
        out.append(DeviceHealth(device, last, online, battery[1] if battery else None))
    return out
