"""The farmer's web app: HTML pages served by the farm API under ``/app``, readable on a phone.

Sign-in takes one of the farm's API tokens and keeps it in an HttpOnly, SameSite=Strict cookie; every page then
checks it exactly as the JSON API checks a bearer token (``api.app.allowed``): another farm's pages are 404, a
token without the read scope 403. No page runs a script: charts are SVG drawn here (``api.web.charts``), from
what InfluxDB holds (``storage.zones``), shaped by ``api.web.views``. A form that changes something carries a
token derived from the session's API token, besides the cookie's SameSite=Strict, so another site cannot post it.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations at runtime.

import hashlib
import hmac
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from api.advice import accept, decline
from api.changes import Changing
from api.deps import Registry, allowed, farm_of, influx_of, instant, zone_in
from api.problems import Problem
from api.web.charts import Chart, Mark, Series, render
from api.web.views import (
    Advice,
    advice_of,
    device_health,
    local_time,
    zone_card,
)
from smartfarm.layout import Farm, SensorKind
from storage.influx import InfluxClient
from storage.registry.store import Client, FarmRegistry, Scope
from storage.zones import (
    decisions,
    device_statuses,
    last_by_device,
    last_by_zone,
    latest_forecasts,
    latest_state,
    recommendations,
    soil_forecasts,
    stored_aggregates,
    superseded,
    zone_states,
)

PREFIX = "/app"
COOKIE = "smartfarm_token"
HERE = Path(__file__).parent
CHART_DAYS = 3
"""How many days back the zone page's charts go; they also show the day ahead (forecast, planned water)."""
INBOX_DAYS = 7
"""How many days back the advice inbox goes."""
DEVICES_SEEN_WITHIN = timedelta(days=7)
"""How far back a device's newest reading is looked for (older: "Never heard"), as the JSON device health does."""

SECURITY_HEADERS = {
    # Nothing but our own stylesheet and forms: no script, no frame, no other origin.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["num"] = lambda v, digits=1: "-" if v is None else f"{v:.{digits}f}"


def form_token(api_token: str) -> str:
    """The token a session's forms carry: derived from its API token, which another site cannot read."""
    return hmac.new(api_token.encode(), b"smartfarm web form", hashlib.sha256).hexdigest()[:32]


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"prefix": PREFIX, "status_code": status, **context}, status_code=status
    )


class PageRoute(APIRoute):
    """A page's route: the API's problems (401, 403, 404, 503) become a page in words (401: the sign-in page),
    and every answer gets the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except Problem as exc:
                if exc.status_code == 401:
                    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
                    response.delete_cookie(COOKIE, path=PREFIX)
                else:
                    response = _page(request, "error.html", exc.status_code, detail=exc.detail, farm=None)
            response.headers.update(SECURITY_HEADERS)
            return response

        return run


pages = APIRouter(include_in_schema=False, route_class=PageRoute)


def session(request: Request, registry: FarmRegistry) -> Client | None:
    """The client whose token the session cookie holds; None without one or for one unknown or revoked."""
    token = request.cookies.get(COOKIE)
    return registry.client(token) if token else None


def signed_in(request: Request, registry: Registry) -> Client:
    """The session's client; 401 (to the sign-in page) without one."""
    found = session(request, registry)
    if found is None:
        raise Problem(401, "sign in with an API token of your farm")
    return found


def reader(farm: str, who: Annotated[Client, Depends(signed_in)]) -> Client:
    """The signed-in client, if it may read ``farm``: the JSON API's own check (404 for another farm)."""
    return allowed(Scope.READ)(farm, who)


Reader = Annotated[Client, Depends(reader)]
Influx = Annotated[InfluxClient, Depends(influx_of)]


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the pages post nothing else), the first value of each."""
    fields = parse_qs((await request.body()).decode(errors="replace"), max_num_fields=10)
    return {k: v[0] for k, v in fields.items()}


async def posted(request: Request) -> dict[str, str]:
    """A form of one of our pages: its fields, if it carries the session's form token (403 otherwise)."""
    fields = await _form(request)
    if not hmac.compare_digest(fields.get("form_token", ""), form_token(request.cookies.get(COOKIE, ""))):
        raise Problem(403, "this form is out of date: open the page again and send it from there")
    return fields


def writer(farm: str, who: Annotated[Client, Depends(signed_in)]) -> Client:
    """The signed-in client, if it may change ``farm``: 404 for another farm, 403 without the write scope."""
    return allowed(Scope.WRITE)(farm, who)


Posted = Annotated[dict[str, str], Depends(posted)]
Writer = Annotated[Client, Depends(writer)]


def farm_now(influx: InfluxClient, farm: str) -> datetime:
    """The farm's "now": the end of its newest scored hour over its zones, or the wall clock before there is one."""
    scored = last_by_zone(influx, "zone_state", farm, 0)
    return datetime.fromtimestamp(max(scored.values()), UTC) if scored else datetime.now(UTC)


def _advice(influx: InfluxClient, farm: str, since: datetime, now: datetime, zone: str | None = None) -> list[Advice]:
    """The farm's advice issued from ``since`` to ``now`` (the zone's only, if given), each where it stands."""
    # Advice is issued at an hour's close, which is the farm's now at the latest: an hour more is margin.
    rows = recommendations(
        influx, farm, since.timestamp(), (now + timedelta(hours=1)).timestamp(), zone=zone, limit=500
    )
    start = since.timestamp()
    return advice_of(rows, decisions(influx, farm, start, zone), superseded(influx, farm, start))


def _frame(request: Request, farm: Farm, who: Client, now: datetime, **context: Any) -> dict[str, Any]:
    tz = ZoneInfo(farm.timezone)
    return {
        "farm": farm,
        "tz": tz,
        "now": now,
        "when": lambda at: local_time(at, tz) if at else "-",
        "form_token": form_token(request.cookies.get(COOKIE, "")),
        "can_decide": Scope.WRITE in who.scopes,
        "who": who,
        **context,
    }


# -- sign in and out ------------------------------------------------------------------------------------------------


@pages.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@pages.get(f"{PREFIX}/")
def home(request: Request, registry: Registry) -> Response:
    who = session(request, registry)
    target = f"{PREFIX}/farms/{who.farm}" if who else f"{PREFIX}/signin"
    return RedirectResponse(target, status_code=303)


@pages.get(f"{PREFIX}/signin")
def signin_page(request: Request) -> HTMLResponse:
    return _page(request, "signin.html", farm=None, error=None)


@pages.post(f"{PREFIX}/signin")
async def signin(request: Request, registry: Registry) -> Response:
    # The last word: a whole line of api-tokens.txt ("valley-farm sft_...") is taken as well as the token alone.
    token = next(iter((await _form(request)).get("token", "").split()[-1:]), "")
    who = registry.client(token) if token else None
    if who is None:
        error = "That token is not known here. Copy your farm's line of api-tokens.txt again, or ask for a new token."
        return _page(request, "signin.html", 401, farm=None, error=error)
    response = RedirectResponse(f"{PREFIX}/farms/{who.farm}", status_code=303)
    # HttpOnly: no script can read it; SameSite=Strict: no other site's page or form sends it.
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=PREFIX, max_age=30 * 86400)
    return response


@pages.post(f"{PREFIX}/signout")
def signout(form: Posted) -> Response:
    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@pages.get(f"{PREFIX}/static/app.css")
def stylesheet() -> FileResponse:
    return FileResponse(HERE / "static" / "app.css", media_type="text/css")


# -- the farm's pages -----------------------------------------------------------------------------------------------


@pages.get(f"{PREFIX}/farms/{{farm}}")
def farm_page(request: Request, registry: Registry, influx: Influx, farm: str, who: Reader) -> HTMLResponse:
    """The zones as cards: soil moisture against the trigger, the next irrigation, the day's alerts."""
    layout = farm_of(registry, farm)
    now = farm_now(influx, farm)
    advice = _advice(influx, farm, now - timedelta(days=2), now)
    cards = [zone_card(z, latest_state(influx, farm, z.id), advice, now) for z in layout.zones]
    return _page(request, "farm.html", **_frame(request, layout, who, now, cards=cards, tab="farm"))


@pages.get(f"{PREFIX}/farms/{{farm}}/zones/{{zone}}")
def zone_page(request: Request, registry: Registry, influx: Influx, farm: str, zone: str, who: Reader) -> HTMLResponse:
    """A zone's last days in charts: soil moisture with its trigger and forecast, rain and irrigation, temperature."""
    layout = farm_of(registry, farm)
    place = zone_in(layout, zone)
    now = farm_now(influx, farm)
    start, end = now - timedelta(days=CHART_DAYS), now + timedelta(days=1)
    charts = zone_charts(influx, layout, zone, start, end, now)
    state = latest_state(influx, farm, zone)
    card = zone_card(place, state, _advice(influx, farm, now - timedelta(days=2), now, zone), now)
    return _page(request, "zone.html", **_frame(request, layout, who, now, card=card, charts=charts, tab="farm"))


def zone_charts(
    influx: InfluxClient, farm: Farm, zone: str, start: datetime, end: datetime, now: datetime
) -> Sequence[str]:
    """The zone page's three charts as SVG, over ``start`` to ``end`` with a mark at ``now``."""
    tz = ZoneInfo(farm.timezone)
    s, e = start.timestamp(), end.timestamp()
    states = zone_states(influx, farm.id, zone, s, e)
    measured = [(instant(r["time"]).timestamp(), r.get("moisture_pct")) for r in states]
    trigger = [(instant(r["time"]).timestamp(), r.get("trigger_pct")) for r in states]
    ahead = [(instant(r["time"]).timestamp(), r["moisture_pct"]) for r in latest_forecasts(influx, farm.id, zone)]
    past_6h = [
        (instant(r["time"]).timestamp(), r["moisture_pct"])
        for r in soil_forecasts(influx, farm.id, zone, s, e)
        if r["horizon"] == "6h"
    ]
    outlook = ([measured[-1]] if measured and ahead else []) + ahead
    hourly = stored_aggregates(influx, farm.id, zone, 3600, s, e)
    rain = [(a.window_start.timestamp(), a.total) for a in hourly if a.kind is SensorKind.RAINFALL]
    air = [a for a in hourly if a.kind is SensorKind.AIR_TEMPERATURE]
    irrigation = _advice(influx, farm.id, start - timedelta(days=1), now, zone)
    water = [
        (a.issued.start_at.timestamp(), a.issued.amount_mm) for a in irrigation if a.is_planned and a.issued.start_at
    ]
    hour = 2 * 3600.0  # a scored hour missing for longer than this is a gap, not a line
    charts = (
        Chart(
            "Soil moisture",
            "% vol",
            s,
            e,
            (
                Series("irrigation trigger", trigger, "trigger", Mark.DASHED, gap_s=hour),
                Series("forecast 6 h ahead, as it was made", past_6h, "forecast-past", Mark.DASHED, gap_s=hour),
                Series("measured", measured, "moisture", gap_s=hour),
                Series("forecast", outlook, "forecast", Mark.DASHED),
            ),
        ),
        Chart(
            "Rain and irrigation",
            "mm",
            s,
            e,
            (Series("rain", rain, "rain", Mark.BARS), Series("irrigation", water, "water", Mark.BARS)),
            include=(0.0,),
        ),
        Chart(
            "Air temperature",
            "°C",
            s,
            e,
            (
                Series("hourly low", [(a.window_start.timestamp(), a.min) for a in air], "cold", gap_s=hour),
                Series("hourly high", [(a.window_start.timestamp(), a.max) for a in air], "hot", gap_s=hour),
                Series("hourly mean", [(a.window_start.timestamp(), a.mean) for a in air], "air", gap_s=hour),
            ),
        ),
    )
    return [render(c, tz, now_s=now.timestamp()) for c in charts]


@pages.get(f"{PREFIX}/farms/{{farm}}/inbox")
def inbox_page(request: Request, registry: Registry, influx: Influx, farm: str, who: Reader) -> HTMLResponse:
    """The farm's advice of the last week, newest first, each with its reasons in words."""
    layout = farm_of(registry, farm)
    now = farm_now(influx, farm)
    advice = _advice(influx, farm, now - timedelta(days=INBOX_DAYS), now)
    names = {z.id: z.name for z in layout.zones}
    return _page(request, "inbox.html", **_frame(request, layout, who, now, advice=advice, names=names, tab="inbox"))


@pages.get(f"{PREFIX}/farms/{{farm}}/devices")
def devices_page(request: Request, registry: Registry, influx: Influx, farm: str, who: Reader) -> HTMLResponse:
    """Each device: when it last sent a reading and whether it is online."""
    layout = farm_of(registry, farm)
    now = farm_now(influx, farm)
    seen = last_by_device(influx, farm, (now - DEVICES_SEEN_WITHIN).timestamp())
    health = device_health(layout.devices, seen, device_statuses(influx, farm), now)
    names = {z.id: z.name for z in layout.zones}
    return _page(
        request, "devices.html", **_frame(request, layout, who, now, health=health, names=names, tab="devices")
    )


@pages.post(f"{PREFIX}/farms/{{farm}}/inbox/{{rid}}/accept")
def accept_page(influx: Influx, changing: Changing, farm: str, rid: UUID, who: Writer, form: Posted) -> Response:
    """Accept an irrigation from the inbox: what ``POST /farms/{farm}/recommendations/{rid}/accept`` does (the
    command to the valve, the decision stored), then back to the inbox."""
    accept(influx, changing, farm, rid, who, None)
    return RedirectResponse(f"{PREFIX}/farms/{farm}/inbox#advice-{rid}", status_code=303)


@pages.post(f"{PREFIX}/farms/{{farm}}/inbox/{{rid}}/decline")
def decline_page(influx: Influx, farm: str, rid: UUID, who: Writer, form: Posted) -> Response:
    """Decline an irrigation from the inbox: what ``POST /farms/{farm}/recommendations/{rid}/decline`` does."""
    decline(influx, farm, rid, who, None)
    return RedirectResponse(f"{PREFIX}/farms/{farm}/inbox#advice-{rid}", status_code=303)
