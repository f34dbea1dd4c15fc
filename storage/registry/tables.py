"""The farm registry's tables (SQLAlchemy 2): farms, their zones, devices with their sensors, and API clients.

The layout's pydantic models stay the contract every component reads (``smartfarm.layout``); these rows are how a
registry keeps them, so a farmer can add a zone or register a device through the API instead of editing a file.
A device is retired, not deleted: its readings stay in InfluxDB under its id, and an id once used is never handed
to another device. The schema is changed only by Alembic migrations (``storage/registry/migrations``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ID = 64
"""The identifier rule's longest id (``smartfarm.identifiers``)."""

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names spelled out, so a migration can name what it alters on SQLite and PostgreSQL alike."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class FarmRow(Base):
    __tablename__ = "farms"

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    elevation_m: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64))

    zones: Mapped[list[ZoneRow]] = relationship(back_populates="farm", order_by="ZoneRow.position")
    devices: Mapped[list[DeviceRow]] = relationship(back_populates="farm", order_by="DeviceRow.position")


class ZoneRow(Base):
    __tablename__ = "zones"

    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    """Order in the farm, as the layout file lists its zones."""
    name: Mapped[str] = mapped_column(String(200))
    crop: Mapped[str] = mapped_column(String(32))
    soil: Mapped[str] = mapped_column(String(32))
    planting_date: Mapped[date] = mapped_column(Date)
    irrigation_rate_mm_h: Mapped[float] = mapped_column(Float)
    area_ha: Mapped[float] = mapped_column(Float)

    farm: Mapped[FarmRow] = relationship(back_populates="zones")


class DeviceRow(Base):
    __tablename__ = "devices"
    __table_args__ = (ForeignKeyConstraint(["farm_id", "zone_id"], ["zones.farm_id", "zones.id"]),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    """Unique across the registry: a device id is its MQTT client id and its Kafka key."""
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"), index=True)
    zone_id: Mapped[str] = mapped_column(String(ID))
    position: Mapped[int] = mapped_column(Integer)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    farm: Mapped[FarmRow] = relationship(back_populates="devices")
    sensors: Mapped[list[SensorRow]] = relationship(
        back_populates="device", order_by="SensorRow.position", cascade="all, delete-orphan"
    )
    lorawan: Mapped[LorawanRow | None] = relationship(back_populates="device", cascade="all, delete-orphan")


class SensorRow(Base):
    __tablename__ = "sensors"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    depth_cm: Mapped[float | None] = mapped_column(Float, nullable=True)

    device: Mapped[DeviceRow] = relationship(back_populates="sensors")


class LorawanRow(Base):
    """How a LoRaWAN device is named by its network server and how its uplinks decode (``smartfarm.lorawan``):
    the webhooks find our device by its DevEUI (unique: an EUI-64 is global) or, for The Things Stack, by its end
    device id (unique within a farm)."""

    __tablename__ = "lorawan_devices"
    __table_args__ = (UniqueConstraint("farm_id", "tts_device_id"),)

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"))
    dev_eui: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)
    """Lower-case hex."""
    tts_device_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    decoder: Mapped[str] = mapped_column(String(32))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    """Field path or channel -> our sensor id."""

    device: Mapped[DeviceRow] = relationship(back_populates="lorawan")


class ClientRow(Base):
    """An API client of one farm: its token is kept only as a SHA-256 (it is shown once, when issued)."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    farm_id: Mapped[str] = mapped_column(ForeignKey("farms.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(200))
    """Comma-separated: ``read``, ``write``, ``ingest``."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
