"""What the rules share: a zone's hours of one kind, its last hour, the farm's local time and day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ml.context import ZoneContext
from smartfarm.layout import SensorKind
from smartfarm.records import ZoneAggregate

HOUR = timedelta(hours=1)


def hourly(context: ZoneContext, kind: SensorKind, span: timedelta) -> list[ZoneAggregate]:
    """The kind's 1-hour aggregates whose windows end within ``span`` before ``window_end``, oldest first."""
    since = context.window_end - span
    return [a for a in context.hours.get(kind, ()) if a.width_s == 3600 and since < a.window_end <= context.window_end]


def last_hour(context: ZoneContext, kind: SensorKind) -> ZoneAggregate | None:
    """The aggregate of the window that just closed; an older one is not "now", so none then."""
    found = hourly(context, kind, HOUR)
    return found[-1] if found else None


def local_time(context: ZoneContext, when: datetime) -> datetime:
    return when.astimezone(ZoneInfo(context.farm.timezone))


def farm_day(context: ZoneContext) -> date:
    """The farm's local date of the hour that just closed (planting dates are local)."""
    return local_time(context, context.window_end - HOUR).date()
