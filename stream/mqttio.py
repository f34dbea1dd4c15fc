"""A paho client that batches its socket I/O, for a high-rate consumer that runs paho's loop on its own thread.

paho reads every packet in three or more ``recv`` calls (a byte of type, the length bytes, the body) and writes
every PUBACK with its own ``send``. At thousands of messages a second those system calls, each releasing and
retaking the GIL, are a large share of the bridge's CPU. This subclass reads up to 64 KiB at a time into a
buffer that paho's reads are served from, and gathers writes until ``flush()``, once per loop turn.

It leans on two of paho 2's private methods, ``_sock_recv`` and ``_sock_send`` (and ``_sock_close``, to flush
and forget the buffers), so it is pinned by the tests of the bridge, which run through it. The owner must call
``flush()`` after each ``loop()``/``loop_read()``, and must read with ``loop_read()`` while ``has_buffered``,
because ``select()`` cannot see bytes already taken off the socket.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import paho.mqtt.client as mqtt

READ_CHUNK = 64 * 1024


class BatchingClient(mqtt.Client):
    """paho's Client with buffered reads and gathered writes (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = memoryview(b"")
        self._wbuf = bytearray()

    @property
    def has_buffered(self) -> bool:
        """Bytes already read from the socket and not yet parsed."""
        return len(self._rbuf) > 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._rbuf:
            data = super()._sock_recv(READ_CHUNK)  # BlockingIOError and EOF (b"") pass through to paho
            if not data:
                return data
            self._rbuf = memoryview(data)
        chunk = bytes(self._rbuf[:bufsize])
        self._rbuf = self._rbuf[bufsize:]
        return chunk

    def _sock_send(self, buf: bytes | bytearray) -> int:
        if self._sock is None:
            raise ConnectionError("self._sock is None")
        self._wbuf += buf
        return len(buf)

    def flush(self) -> bool:
        """Write what was gathered, as far as the socket takes it now; True when nothing is left."""
        while self._wbuf and self._sock is not None:
            try:
                sent = self._sock.send(self._wbuf)
            except BlockingIOError:
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
