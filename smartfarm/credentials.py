"""Per-device MQTT credentials: passwords derived from one fleet secret, and Mosquitto's password file.

A device logs in with its id as user name and a password derived from the fleet secret (HMAC-SHA256), so the
broker's password file and every device can be provisioned from the layout and one secret, and a leaked
device password opens that device's topics only (the ACL is rendered by ``smartfarm.topics.MqttTopics.acl``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

MOSQUITTO_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes for its $7$ (PBKDF2-SHA512) hashes


def device_password(secret: SecretStr, username: str) -> str:
    """The password of ``username``, derived from the fleet secret."""
    digest = hmac.new(secret.get_secret_value().encode(), username.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """A password hash in Mosquitto 2.0's ``$7$`` format (PBKDF2-SHA512, as ``mosquitto_passwd`` writes)."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    return f"$7${MOSQUITTO_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Write a Mosquitto password file for ``users`` (name -> password), readable by its owner only. The file is
    replaced whole (written beside and renamed), so a broker reloading it never reads half of it."""
    replace_file(path, "".join(f"{name}:{mosquitto_hash(password)}\n" for name, password in users.items()), 0o600)


def replace_file(path: Path, text: str, mode: int = 0o644) -> None:
    """``path`` holds ``text`` at once: written to a file beside it, then renamed over it."""
    fresh = path.with_name(f".{path.name}.new")
    fresh.touch(mode=mode)
    fresh.chmod(mode)
    fresh.write_text(text)
    os.replace(fresh, path)
