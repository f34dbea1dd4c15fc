"""The farm registry: a relational database of farms, zones, devices and API clients, migrated by Alembic.

SQLite in ``.smartfarm/registry.db`` by default; PostgreSQL by URL (``postgresql+psycopg://...``). The layout file
is its import and export format: ``import_layout`` makes a farm's zones and devices those of the file (a device the
file no longer lists is retired, never deleted), ``layout`` gives the registry back as the ``Layout`` every
component reads. API tokens are random, shown once when issued and kept as their SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from smartfarm.errors import ConfigError, StorageError
from smartfarm.layout import Device, Farm, Layout, Sensor, Zone
from smartfarm.lorawan import LorawanBinding
from storage.registry.tables import ClientRow, DeviceRow, FarmRow, LorawanRow, SensorRow, ZoneRow

LAYOUT_CACHE_S = 2.0
"""How long ``FarmRegistry.layout`` answers from memory (changes through the same registry clear it at once)."""

TOKEN_PREFIX = "sft_"
"""API tokens start with this, so a leaked one is recognisable (secret scanners, logs)."""


class Conflict(ConfigError):
    """The change asks for something the registry already holds (a zone or device id taken)."""


class Missing(ConfigError):
    """The change names a farm, zone or device the registry does not hold (or holds retired)."""


Publish = Callable[[Farm], None]
"""Called with a farm as a change leaves it, before the change commits: if it raises, nothing is changed."""


class Scope(StrEnum):
    """What an API client may do with its farm."""

    READ = "read"
    WRITE = "write"
    INGEST = "ingest"


@dataclass(frozen=True, slots=True)
class Client:
    """An API client as a request sees it: its farm and what it may do."""

    id: int
    farm: str
    name: str
    scopes: frozenset[Scope]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _enable_sqlite_foreign_keys(engine: Engine) -> None:
    """SQLite enforces foreign keys only when asked, per connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class FarmRegistry:
    """Farms, zones, devices and API clients in one relational database (``url``: any SQLAlchemy URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url, future=True, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            _enable_sqlite_foreign_keys(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._layouts: dict[tuple[str, ...] | None, tuple[float, Layout]] = {}
        """``layout``'s answers for ``LAYOUT_CACHE_S``; every change made through this registry clears them."""

    @classmethod
    def at(cls, path: Path) -> FarmRegistry:
        """A SQLite registry in the file ``path`` (its folder is made)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path.resolve()}")

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to the newest migration (a new database gets every table), or to ``revision``."""
        config = Config()
        config.set_main_option("script_location", str(resources.files("storage.registry").joinpath("migrations")))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except OperationalError as exc:
            raise StorageError(f"the farm registry at {self.engine.url!r} cannot be reached: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise StorageError unless the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            raise StorageError(f"the farm registry at {self.engine.url!r} cannot be reached: {exc.orig}") from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def _changing(self) -> Iterator[Session]:
        """A session that changes farms: ``layout``'s cached answers are dropped however it ends."""
        try:
            with self.session() as session:
                yield session
        finally:
            self._layouts.clear()

    # -- the layout: import and export ----------------------------------------------------------------------------

    def import_layout(self, layout: Layout) -> None:
        """Make each farm of ``layout`` what the file says: farm fields, zones and devices with their sensors.
        A device of one of these farms that the file no longer lists is retired; one it lists again comes back.
        A zone the file drops is removed only if no device, active or retired, names it (its history stays)."""
        now = datetime.now(UTC)
        with self._changing() as s:
            for farm in layout.farms:
                self._refuse_foreign_devices(s, farm)
                row = s.get(FarmRow, farm.id) or FarmRow(id=farm.id)
                row.name, row.latitude, row.longitude = farm.name, farm.latitude, farm.longitude
                row.elevation_m, row.timezone = farm.elevation_m, farm.timezone
                s.add(row)
                s.flush()
                self._import_zones(s, farm)
                self._import_devices(s, farm, now)

    def _refuse_foreign_devices(self, s: Session, farm: Farm) -> None:
        ids = [d.id for d in farm.devices]
        if not ids:
            return
        taken = s.scalars(select(DeviceRow).where(DeviceRow.id.in_(ids), DeviceRow.farm_id != farm.id)).all()
        if taken:
            names = ", ".join(sorted(f"{d.id} (farm {d.farm_id})" for d in taken))
            raise ConfigError(f"farm {farm.id!r}: device ids already registered to another farm: {names}")

    def _import_zones(self, s: Session, farm: Farm) -> None:
        existing = {z.id: z for z in s.scalars(select(ZoneRow).where(ZoneRow.farm_id == farm.id))}
        for position, zone in enumerate(farm.zones):
            row = existing.pop(zone.id) if zone.id in existing else ZoneRow(farm_id=farm.id, id=zone.id)
            s.add(_zone_row(row, position, zone))
        s.flush()
        named = set(s.scalars(select(DeviceRow.zone_id).where(DeviceRow.farm_id == farm.id)))
        for zone_id, row in existing.items():
            if zone_id not in named and zone_id not in {d.zone for d in farm.devices}:
                s.delete(row)

    def _import_devices(self, s: Session, farm: Farm, now: datetime) -> None:
        existing = {d.id: d for d in s.scalars(select(DeviceRow).where(DeviceRow.farm_id == farm.id))}
        for position, device in enumerate(farm.devices):
            row = existing.pop(device.id, None) or DeviceRow(id=device.id, farm_id=farm.id)
            row.zone_id, row.position, row.retired_at = device.zone, position, None
            row.sensors = [
                SensorRow(id=sensor.id, position=i, kind=sensor.kind.value, depth_cm=sensor.depth_cm)
                for i, sensor in enumerate(device.sensors)
            ]
            s.add(row)
        for row in existing.values():
            if row.retired_at is None:
                row.retired_at = now

    def has_farms(self) -> bool:
        with self.session() as s:
            return s.scalars(select(FarmRow.id).limit(1)).first() is not None

    def layout(self, farms: Iterable[str] | None = None) -> Layout:
        """The registry as a layout: every farm (or those named), their zones and active devices, in file order.
        Answers are kept ``LAYOUT_CACHE_S``: the API asks for its farm on every request; a change made through this
        registry is seen at once, one made by another process within that time."""
        key = None if farms is None else tuple(sorted(farms))
        now = time.monotonic()
        cached = self._layouts.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        layout = self._read_layout(key)
        self._layouts[key] = (now + LAYOUT_CACHE_S, layout)
        return layout

    def _read_layout(self, farms: tuple[str, ...] | None) -> Layout:
        with self._sessions.begin() as s:
            query = (
                select(FarmRow)
                .order_by(FarmRow.id)
                .options(selectinload(FarmRow.zones), selectinload(FarmRow.devices).selectinload(DeviceRow.sensors))
            )
            if farms is not None:
                query = query.where(FarmRow.id.in_(list(farms)))
            rows = s.scalars(query).all()
            if not rows:
                raise ConfigError("the farm registry holds no farm: import a layout first (smartfarm layout import)")
            return Layout(farms=tuple(_farm(row) for row in rows))

    # -- LoRaWAN devices ------------------------------------------------------------------------------------------

    def bind_lorawan(self, farm: str, device: str, binding: LorawanBinding) -> None:
        """Make ``binding`` how ``device`` (active, of ``farm``) is named by its network server and decoded,
        replacing what it had; Missing when the device is not there, Conflict when another device holds the DevEUI
        or The Things Stack id."""
        with self.session() as s:
            row = s.get(DeviceRow, device)
            if row is None or row.farm_id != farm or row.retired_at is not None:
                raise Missing(f"farm {farm!r} has no active device {device!r}")
            taken: list[LorawanRow] = []
            if binding.dev_eui is not None:
                taken += s.scalars(select(LorawanRow).where(LorawanRow.dev_eui == binding.dev_eui)).all()
            if binding.tts_device_id is not None:
                taken += s.scalars(
                    select(LorawanRow).where(
                        LorawanRow.farm_id == farm, LorawanRow.tts_device_id == binding.tts_device_id
                    )
                ).all()
            others = sorted({t.device_id for t in taken if t.device_id != device})
            if others:
                raise Conflict(f"the network server's name of {device!r} is already bound to {', '.join(others)}")
            lorawan = row.lorawan or LorawanRow(device_id=device)
            lorawan.farm_id, lorawan.dev_eui, lorawan.tts_device_id = farm, binding.dev_eui, binding.tts_device_id
            lorawan.decoder, lorawan.fields = binding.decoder.value, dict(binding.fields)
            row.lorawan = lorawan

    def lorawan(self, farm: str, device: str) -> LorawanBinding | None:
        """How ``device`` of ``farm`` is bound as a LoRaWAN device; None if it is not."""
        with self.session() as s:
            row = s.get(LorawanRow, device)
            return _binding(row) if row is not None and row.farm_id == farm else None

    def lorawan_device(
        self, farm: str, dev_eui: str | None, tts_device_id: str | None = None
    ) -> tuple[str, LorawanBinding] | None:
        """The active device of ``farm`` a network server names by ``dev_eui`` (looked up first) or
        ``tts_device_id``, and its binding; None when none is bound so."""
        with self.session() as s:
            for column, value in ((LorawanRow.dev_eui, dev_eui), (LorawanRow.tts_device_id, tts_device_id)):
                if value is None:
                    continue
                row = s.scalars(
                    select(LorawanRow)
                    .join(DeviceRow, DeviceRow.id == LorawanRow.device_id)
                    .where(LorawanRow.farm_id == farm, column == value.lower(), DeviceRow.retired_at.is_(None))
                ).first()
                if row is not None:
                    return row.device_id, _binding(row)
        return None

    # -- changes through the API: each leaves the farm published before it commits ---------------------------------

    def add_zone(self, farm: str, zone: Zone, publish: Publish) -> Farm:
        """Add ``zone`` after the farm's zones; Conflict if its id is taken, Missing for an unknown farm."""
        with self._changing() as s:
            row = self._farm_row(s, farm)
            if s.get(ZoneRow, (farm, zone.id)) is not None:
                raise Conflict(f"farm {farm!r} already has a zone {zone.id!r}")
            s.add(_zone_row(ZoneRow(farm_id=farm, id=zone.id), len(row.zones), zone))
            return self._publish(s, row, publish)

    def register_device(self, farm: str, device: Device, publish: Publish) -> Farm:
        """Register ``device`` with its sensors in one of the farm's zones. Conflict if its id was ever used (a
        device id is its MQTT user and Kafka key: a retired one is never handed out again); Missing for an unknown
        farm or zone."""
        with self._changing() as s:
            row = self._farm_row(s, farm)
            if s.get(ZoneRow, (farm, device.zone)) is None:
                raise Missing(f"farm {farm!r} has no zone {device.zone!r}")
            taken = s.get(DeviceRow, device.id)
            if taken is not None:
                raise Conflict(
                    f"device id {device.id!r} is already registered"
                    + (" (retired; a device id is never reused)" if taken.retired_at else "")
                )
            s.add(
                DeviceRow(
                    id=device.id,
                    farm_id=farm,
                    zone_id=device.zone,
                    position=len(row.devices),
                    sensors=[
                        SensorRow(id=x.id, position=i, kind=x.kind.value, depth_cm=x.depth_cm)
                        for i, x in enumerate(device.sensors)
                    ],
                )
            )
            return self._publish(s, row, publish)

    def retire_device(self, farm: str, device: str, publish: Publish) -> Farm:
        """Retire an active device: it can no longer log in, and its readings stay. Missing if it is not one."""
        with self._changing() as s:
            row = self._farm_row(s, farm)
            found = s.get(DeviceRow, device)
            if found is None or found.farm_id != farm or found.retired_at is not None:
                raise Missing(f"farm {farm!r} has no active device {device!r}")
            found.retired_at = datetime.now(UTC)
            return self._publish(s, row, publish)

    @staticmethod
    def _farm_row(s: Session, farm: str) -> FarmRow:
        row = s.get(FarmRow, farm)
        if row is None:
            raise Missing(f"no farm {farm!r}")
        return row

    @staticmethod
    def _publish(s: Session, row: FarmRow, publish: Publish) -> Farm:
        s.flush()
        s.refresh(row)
        try:
            farm = _farm(row)
        except ValueError as exc:  # the change leaves no valid farm (a pydantic rule the tables do not hold)
            raise ConfigError(f"farm {row.id!r} would not be valid: {exc}") from exc
        publish(farm)
        return farm

    # -- API clients ----------------------------------------------------------------------------------------------

    def issue_token(self, farm: str, name: str, scopes: Iterable[Scope]) -> str:
        """A new API token for ``farm`` with ``scopes``; the token itself is returned once and never stored."""
        chosen = sorted({Scope(sc) for sc in scopes})
        if not chosen:
            raise ConfigError("an API token needs at least one scope: read, write or ingest")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.session() as s:
            if s.get(FarmRow, farm) is None:
                raise ConfigError(f"no farm {farm!r} in the registry")
            s.add(
                ClientRow(
                    farm_id=farm,
                    name=name,
                    token_sha256=token_hash(token),
                    scopes=",".join(chosen),
                    created_at=datetime.now(UTC),
                )
            )
        return token

    def client(self, token: str) -> Client | None:
        """The client a token belongs to; None for an unknown or revoked token."""
        with self.session() as s:
            row = s.scalars(select(ClientRow).where(ClientRow.token_sha256 == token_hash(token))).first()
            if row is None or row.revoked_at is not None:
                return None
            return Client(row.id, row.farm_id, row.name, frozenset(Scope(x) for x in row.scopes.split(",") if x))

    def revoke(self, client_id: int) -> None:
        with self.session() as s:
            row = s.get(ClientRow, client_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)


@contextmanager
def migrated(url: str) -> Iterator[FarmRegistry]:
    """The registry at ``url`` with its schema brought to the newest migration, closed on leaving."""
    registry = FarmRegistry(url)
    try:
        registry.migrate()
        yield registry
    finally:
        registry.close()


def _binding(row: LorawanRow) -> LorawanBinding:
    return LorawanBinding(
        dev_eui=row.dev_eui, tts_device_id=row.tts_device_id, decoder=row.decoder, fields=dict(row.fields)
    )


def _zone_row(row: ZoneRow, position: int, zone: Zone) -> ZoneRow:
    """``row`` holding ``zone`` at ``position`` in its farm."""
    row.position, row.name, row.crop, row.soil = position, zone.name, zone.crop.value, zone.soil.value
    row.planting_date, row.area_ha = zone.planting_date, zone.area_ha
    row.irrigation_rate_mm_h = zone.irrigation_rate_mm_h
    return row


def _farm(row: FarmRow) -> Farm:
    return Farm(
        id=row.id,
        name=row.name,
        latitude=row.latitude,
        longitude=row.longitude,
        elevation_m=row.elevation_m,
        timezone=row.timezone,
        zones=tuple(
            Zone(
                id=z.id,
                name=z.name,
                crop=z.crop,
                soil=z.soil,
                planting_date=z.planting_date,
                irrigation_rate_mm_h=z.irrigation_rate_mm_h,
                area_ha=z.area_ha,
            )
            for z in row.zones
        ),
        devices=tuple(
            Device(
                id=d.id,
                zone=d.zone_id,
                sensors=tuple(Sensor(id=x.id, kind=x.kind, depth_cm=x.depth_cm) for x in d.sensors),
            )
            for d in row.devices
            if d.retired_at is None
        ),
    )
