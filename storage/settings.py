"""Settings of the InfluxDB connection."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from smartfarm.settings import ComponentSettings


class InfluxSettings(ComponentSettings):
    """Where InfluxDB (1.x HTTP API) is and which database the pipeline writes."""

    model_config = SettingsConfigDict(env_prefix="SMARTFARM_INFLUX_", env_file=".env", extra="ignore")

    url: str = Field("http://127.0.0.1:8086", description="base URL of the InfluxDB HTTP API")
    database: str = Field("smartfarm", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="database to write and query")
    username: str = Field("", description="InfluxDB user; empty when auth is off")
    password: SecretStr = Field(SecretStr(""), description="InfluxDB password; empty when auth is off")
    timeout_s: float = Field(10.0, gt=0, le=300, description="HTTP timeout of one request")
    retention: str = Field("52w", pattern=r"^(INF|\d+[hdw])$", description="retention of the database when created")
