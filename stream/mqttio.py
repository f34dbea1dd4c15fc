"""A paho client with a fast receive path, for a high-rate consumer that runs paho's loop on its own thread.

paho reads every packet in three or more ``recv`` calls (a byte of type, the length bytes, the body), builds an
``MQTTMessage`` with a ``Properties`` object and runs its topic matcher for every PUBLISH, and writes every PUBACK
with its own ``send``. At thousands of messages a second that is most of the bridge's CPU (measured: paho's
``_handle_publish`` alone was half of the ingress thread). This subclass

- reads up to 64 KiB at a time into a buffer that paho's reads are served from, noting when (``read_at``: one
  clock reading for the packets of one read, rather than one per packet);
- parses the PUBLISH packets (QoS 0 and 1) lying whole in that buffer itself, many per loop turn, and hands each
  to ``on_publish_packet(topic, payload, mid, qos, dup)``; every other packet, and a PUBLISH split across reads,
  goes through paho as usual, whose ``on_message`` is routed to the same handler;
- gathers writes until ``flush()``, and writes PUBACKs as the 4 bytes they are (``puback``).

Over TLS (``SMARTFARM_MQTT_TLS``) the socket paho hands out (``socket()``) is an ``ssl.SSLSocket``, which reads at
most one TLS record (up to 16 KiB; Mosquitto writes one per packet) a call: a fill then reads record after record
until ``READ_CHUNK`` or nothing waits, so one turn still takes many packets. A write the socket cannot take now
raises ``SSLWantWriteError`` (or ``SSLWantReadError``) rather than ``BlockingIOError``: the unsent bytes are kept
and written, unchanged and first, at the next ``flush()`` (OpenSSL wants the same bytes again); only a connection
that is gone drops them (the broker then sends the unacknowledged messages again). Bytes OpenSSL has decrypted but
not yet handed over (``pending()``) are invisible to ``select()``, so the wait is skipped while there are some.

It leans on paho 2's private ``_sock_recv``, ``_sock_send``, ``_sock_close`` and ``_in_packet`` (and the keepalive
clocks), so it is pinned by the tests of the bridge, which run through it, and by
``tests/integration/stream/test_mqttio.py``.
The owner runs ``wait_and_read()`` (or ``read_packets()``) instead of paho's ``loop()``, because ``select()`` cannot
see bytes already taken off the socket, and calls ``flush()`` after each turn.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_CHUNK = 64 * 1024
PUBACK = 0x40
WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
"""What a non-blocking socket (plain or TLS) raises when it cannot read or write now: try again later."""

PublishHandler = Callable[[str, bytes, int, int, bool], None]
"""Called with topic, payload, packet id (0 for QoS 0), QoS and the DUP flag of each PUBLISH received."""


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``pos``: (value, position after it); (-1, pos) if incomplete or too long."""
    value = 0
    shift = 0
    for i in range(pos, min(pos + 4, end)):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    return -1, pos


class BatchingClient(mqtt.Client):
    """paho's Client with buffered reads, its own PUBLISH parsing and gathered writes (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = memoryview(b"")
        self._wbuf = bytearray()
        self.on_publish_packet: PublishHandler | None = None
        self.parsed_here = 0  # PUBLISH packets taken by the fast path rather than paho
        self.behind = False  # the last read took a whole READ_CHUNK: more bytes are likely waiting
        self.read_at = 0.0  # when the bytes in the buffer were read (epoch seconds): their packets' receipt time
        self.on_message = self._from_paho

    def _from_paho(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self.on_publish_packet is not None:
            self.on_publish_packet(msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.dup))

    @property
    def has_buffered(self) -> bool:
        """Bytes already read from the socket (or decrypted by TLS, not yet taken) and not yet parsed."""
        return len(self._rbuf) > 0 or self._pending()

    def _pending(self) -> bool:
        """Bytes TLS has decrypted and holds for us: ``select()`` does not see them."""
        sock = self.socket()
        return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0

    def wait_and_read(self, timeout: float, limit: int) -> MQTTErrorCode:
        """paho's ``loop()`` for this client: write what paho queued, wait up to ``timeout`` seconds for bytes
        (not at all when some are buffered), then handle up to ``limit`` packets. ``loop_misc()`` (keepalive) is
        left to the owner, to run every so often rather than every turn."""
        sock = self.socket()
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        if self._out_packet:  # e.g. a SUBSCRIBE queued from a callback
            rc = self.loop_write()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return rc
        if not self._rbuf and not self._pending():
            try:
                # Waiting for bytes, and for room for the bytes a full socket left unsent (acknowledgements).
                readable, writable, _ = select.select([sock], [sock] if self._wbuf else [], [], timeout)
            except (OSError, ValueError):
                return self.loop_read()  # paho notices the broken socket and reports it
            if writable:
                self.flush()
            if not readable:
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self.read_packets(limit)

    def read_packets(self, limit: int) -> MQTTErrorCode:
        """Handle up to ``limit`` incoming packets, stopping early when what was read so far is used up.

        The buffer is filled before the first packet is looked at, so a PUBLISH that came alone takes the fast
        path too (letting paho read it would cost paho's three reads and its message objects: under live load,
        where most reads find a packet or two, that was most packets)."""
        for _ in range(limit):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if not self._rbuf and not self._fill():
                return MQTTErrorCode.MQTT_ERR_SUCCESS  # nothing waiting
            if not self._take_publish():
                rc = self.loop_read()  # one packet the paho way (this also refills the buffer)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return rc
            if not self._rbuf:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _take_publish(self) -> bool:
        """Parse and hand on the PUBLISH at the head of the buffer if it lies there whole; False if paho must."""
        buf = self._rbuf
        size = len(buf)
        # A whole-packet read is only ours between packets; QoS 2, MQTT 3 and topic aliases are left to paho.
        if size < 2 or buf[0] & 0xF4 != 0x30 or self._in_packet["command"] or self._protocol != mqtt.MQTTv5:
            return False
        length, pos = _varint(buf, 1, size)
        end = pos + length
        if length < 0 or end > size or length < 3:
            return False
        flags = buf[0]
        qos = (flags >> 1) & 0x03
        topic_len = (buf[pos] << 8) | buf[pos + 1]
        pos += 2
        if topic_len == 0 or pos + topic_len > end:
            return False  # a topic alias, or malformed: paho handles it (and reports the protocol error)
        topic = bytes(buf[pos : pos + topic_len]).decode("utf-8", "replace")
        pos += topic_len
        mid = 0
        if qos:
            if pos + 2 > end:
                return False
            mid = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
        props_len, pos = _varint(buf, pos, end)
        if props_len < 0 or pos + props_len > end:
            return False  # malformed: paho reports the protocol error
        payload = bytes(buf[pos + props_len : end])
        self._rbuf = buf[end:]
        self.parsed_here += 1
        if self.on_publish_packet is not None:
            self.on_publish_packet(topic, payload, mid, qos, bool(flags & 0x08))
        return True

    def puback(self, mids: Iterable[int]) -> None:
        """Acknowledge QoS 1 messages (manual ack), in the order given; written at the next ``flush()``."""
        if self._sock is None:
            return  # the connection is gone: the broker sends those messages again
        for mid in mids:
            self._wbuf += bytes((PUBACK, 2, mid >> 8, mid & 0xFF))
        self._last_msg_out = mqtt.time_func()

    def _fill(self) -> bool:
        """Read what the socket holds (up to ``READ_CHUNK``) into the empty buffer; False when no bytes wait.
        A closed or failed connection is True, left for paho's own read to meet and report as it does."""
        try:
            data = self._read()
        except BlockingIOError:
            return False
        except OSError:
            return True
        self._keep(data)
        return True

    def _read(self) -> bytes:
        """What the socket holds, up to ``READ_CHUNK`` bytes (over TLS, record after record); BlockingIOError when
        nothing waits, b"" at the end of the connection."""
        data = super()._sock_recv(READ_CHUNK)
        sock = self.socket()
        if data and isinstance(sock, ssl.SSLSocket):
            data = self._more_records(sock, data)
        return data

    @staticmethod
    def _more_records(sock: ssl.SSLSocket, first: bytes) -> bytes:
        """``first`` and the TLS records after it that wait now, up to ``READ_CHUNK`` bytes in all (a TLS read
        returns one record). What stops it (nothing waits, the connection ended or broke) is left for the next
        read to meet."""
        parts = [first]
        size = len(first)
        while size < READ_CHUNK:
            try:
                more = sock.recv(READ_CHUNK - size)
            except OSError:  # nothing waits now (SSLWantRead), or a failure paho's next read reports
                break
            if not more:
                break
            parts.append(more)
            size += len(more)
        return first if len(parts) == 1 else b"".join(parts)

    def _keep(self, data: bytes) -> None:
        self.behind = len(data) == READ_CHUNK
        if data:
            self._rbuf = memoryview(data)
            self.read_at = time.time()
            self._last_bytes_received = mqtt.time_func()  # paho's keepalive clock; our fast path skips paho's

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._rbuf:
            # As a fill reads (a whole chunk, not one TLS record: ``behind`` must say when more waits). BlockingIOError
            # and EOF (b"") pass through to paho.
            data = self._read()
            if not data:
                return data
            self._keep(data)
        chunk = bytes(self._rbuf[:bufsize])
        self._rbuf = self._rbuf[bufsize:]
        return chunk

    def _sock_send(self, buf: bytes | bytearray) -> int:
        if self._sock is None:
            raise ConnectionError("self._sock is None")
        self._wbuf += buf
        return len(buf)

    def flush(self) -> bool:
        """Write what was gathered, as far as the socket takes it now; True when nothing is left. What the socket
        cannot take now stays, to be written first at the next call (``wait_and_read`` calls it when there is room)."""
        sock = self.socket()
        while self._wbuf and sock is not None:
            try:
                sent = sock.send(self._wbuf)
            except WOULD_BLOCK:
                return False
            except OSError:
                self._wbuf.clear()  # the connection is gone; paho notices on its next read
                return True
            del self._wbuf[:sent]
        return not self._wbuf

    def _sock_close(self) -> None:
        sock = self._sock
        if isinstance(sock, socket.socket) and self._wbuf:
            # A DISCONNECT (or last acknowledgements) gathered just before paho closes the socket.
            sock.settimeout(1.0)
            with contextlib.suppress(OSError):
                sock.sendall(self._wbuf)
        self._wbuf.clear()
        self._rbuf = memoryview(b"")
        super()._sock_close()
