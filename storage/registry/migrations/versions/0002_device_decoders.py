"""LoRaWAN devices: how the network server names a device and the decoder of its uplinks.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lorawan_devices",
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("farm_id", sa.String(64), nullable=False),
        sa.Column("dev_eui", sa.String(16), nullable=True),
        sa.Column("tts_device_id", sa.String(36), nullable=True),
        sa.Column("decoder", sa.String(32), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_lorawan_devices_device_id_devices", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["farm_id"], ["farms.id"], name="fk_lorawan_devices_farm_id_farms", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id", name="pk_lorawan_devices"),
        sa.UniqueConstraint("dev_eui", name="uq_lorawan_devices_dev_eui"),
        sa.UniqueConstraint("farm_id", "tts_device_id", name="uq_lorawan_devices_farm_id"),
    )


def downgrade() -> None:
    op.drop_table("lorawan_devices")
