"""The one way a paho client is made and connected: MQTT 5, credentials, will, session and keepalive.

Devices, valves, the load generator and the bridge all connect through here, so a change to how the project
speaks MQTT (TLS, another protocol version, other reconnect delays) is made once. With ``SMARTFARM_MQTT_TLS`` every
client verifies the broker against ``SMARTFARM_MQTT_CA_FILE`` (TLS 1.2 at least, the host name checked; there is
no setting that turns verification off) and, given ``SMARTFARM_MQTT_CERT_FILE``, logs in with its certificate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, overload

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from smartfarm.settings import MqttSettings

C = TypeVar("C", bound=mqtt.Client)

RECONNECT_DELAY_S = (1, 4)
"""paho's reconnect back-off, from the first retry to the longest wait (seconds)."""


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for a client that is lost without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class Session:
    """What a client asks the broker to keep for it between connections.

    Args:
        expiry_s: how long the broker keeps the session (subscriptions and queued QoS 1 messages) after a
            disconnect; 0 means a clean session that ends with the connection.
        receive_maximum: unacknowledged QoS 1 messages the broker may send at once; None: the broker's choice.
    """

    expiry_s: int = 0
    receive_maximum: int | None = None


@overload
def mqtt_client(
    settings: MqttSettings,
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
    manual_ack: bool = False,
) -> mqtt.Client: ...


@overload
def mqtt_client(
    settings: MqttSettings,
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
    manual_ack: bool = False,
    cls: type[C],
) -> C: ...


def mqtt_client(
    settings: MqttSettings,
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
    manual_ack: bool = False,
    cls: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A paho client for MQTT 5 with its credentials (``username`` and ``password``, else the settings' service
    user, if any), last will and reconnect back-off set; ``connect`` opens its connection."""
    client = cls(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    user = settings.username if username is None else username
    if user:
        client.username_pw_set(user, settings.password.get_secret_value() if password is None else password)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    client.reconnect_delay_set(*RECONNECT_DELAY_S)
    if settings.tls:
        client.tls_set_context(tls_context(settings.ca_file, settings.cert_file, settings.key_file))
    return client


@lru_cache(maxsize=64)
def tls_context(ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    """A client TLS context that trusts ``ca_file`` (the system's CAs when None), checks the broker's name and
    offers TLS 1.2 at least; with ``cert_file`` and ``key_file`` it presents that client certificate. One per set
    of files, shared by the clients that use them (a fleet of a thousand devices loads the CA once)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=None if ca_file is None else str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), None if key_file is None else str(key_file))
    return context


def connect(client: mqtt.Client, settings: MqttSettings, session: Session = Session(), *, background: bool) -> None:
    """Connect ``client`` to the broker of ``settings`` with its keepalive, resuming ``session`` if it has one.

    ``background``: connect on paho's network thread (``connect_async``, paho reconnects by itself), or now."""
    options: dict[str, Any] = {"keepalive": settings.keepalive_s}
    if session.expiry_s or session.receive_maximum is not None:
        props = Properties(PacketTypes.CONNECT)
        if session.expiry_s:
            props.SessionExpiryInterval = session.expiry_s
        if session.receive_maximum is not None:
            props.ReceiveMaximum = session.receive_maximum
        options["properties"] = props
    if session.expiry_s:
        options["clean_start"] = False
    if background:
        client.connect_async(settings.host, settings.port, **options)
    else:
        client.connect(settings.host, settings.port, **options)
