"""The farm registry: farms, zones, devices and API clients in a relational database (SQLAlchemy 2, Alembic)."""
