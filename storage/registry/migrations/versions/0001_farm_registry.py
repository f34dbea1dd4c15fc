"""The farm registry: farms, zones, devices, sensors, API clients.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "farms",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("elevation_m", sa.Float(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_farms"),
    )
    op.create_table(
        "zones",
        sa.Column("farm_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("crop", sa.String(32), nullable=False),
        sa.Column("soil", sa.String(32), nullable=False),
        sa.Column("planting_date", sa.Date(), nullable=False),
        sa.Column("irrigation_rate_mm_h", sa.Float(), nullable=False),
        sa.Column("area_ha", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["farm_id"], ["farms.id"], name="fk_zones_farm_id_farms", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("farm_id", "id", name="pk_zones"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("farm_id", sa.String(64), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["farm_id"], ["farms.id"], name="fk_devices_farm_id_farms", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["farm_id", "zone_id"], ["zones.farm_id", "zones.id"], name="fk_devices_farm_id_zones"),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
    )
    op.create_index("ix_devices_farm_id", "devices", ["farm_id"])
    op.create_table(
        "sensors",
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("depth_cm", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_sensors_device_id_devices", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id", "id", name="pk_sensors"),
    )
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("farm_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["farm_id"], ["farms.id"], name="fk_api_clients_farm_id_farms", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_api_clients"),
        sa.UniqueConstraint("token_sha256", name="uq_api_clients_token_sha256"),
    )
    op.create_index("ix_api_clients_farm_id", "api_clients", ["farm_id"])


def downgrade() -> None:
    op.drop_index("ix_api_clients_farm_id", table_name="api_clients")
    op.drop_table("api_clients")
    op.drop_table("sensors")
    op.drop_index("ix_devices_farm_id", table_name="devices")
    op.drop_table("devices")
    op.drop_table("zones")
    op.drop_table("farms")
