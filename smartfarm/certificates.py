"""The installation's TLS certificates for MQTT: a CA of its own, the broker's server certificate, devices'
client certificates.

The first half makes certificates in memory (no I/O: ``new_ca``, ``server_certificate``,
``client_certificate``); the second writes and reads them in a folder (``installation_tls``, ``issue_client``),
the layout ``smartfarm up`` keeps under ``.smartfarm/tls/`` and ``smartfarm broker-auth --tls`` writes for
docker-compose. Keys are written readable by their owner only (0600).

A device or service verifies the broker against ``ca.crt``; a device with a client certificate (its common name
is its device id) logs in with that certificate alone, on the broker's certificate listener.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smartfarm.credentials import replace_file
from smartfarm.errors import ConfigError

CA_DAYS = 3650
"""A CA lives ten years: renewing it means handing every device a new one."""
LEAF_DAYS = 825
"""The broker's and a device's certificate: what browsers and most TLS stacks accept at most."""
BROKER_HOSTS = ("127.0.0.1", "localhost", "mosquitto")
"""The names the broker is reached by: loopback for ``smartfarm up``, the compose service name inside compose."""


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    organization = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SmartFarm")
    return x509.Name([organization, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # a device whose clock runs a little behind still accepts it
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def new_ca(common_name: str = "SmartFarm installation CA") -> Issued:
    """A CA of the installation (P-256 key), which signs the broker's and the devices' certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        _builder(name, name, key, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem(key))


def _leaf(ca: Issued, common_name: str, usage: x509.ObjectIdentifier, names: list[x509.GeneralName]) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = ca.certificate
    builder = (
        _builder(_name(common_name), ca_cert.subject, key, LEAF_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    cert = builder.add_extension(x509.SubjectAlternativeName(names), critical=False).sign(ca.key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem(key))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def server_certificate(ca: Issued, hosts: tuple[str, ...] = BROKER_HOSTS) -> Issued:
    """The broker's certificate, signed by ``ca``, valid for each of ``hosts`` (IP addresses and DNS names)."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host name")
    return _leaf(ca, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, [_general_name(h) for h in hosts])


def client_certificate(ca: Issued, common_name: str) -> Issued:
    """A client certificate signed by ``ca`` whose common name is the user it logs in as (a device id)."""
    if not common_name or "/" in common_name or "+" in common_name or "#" in common_name:
        raise ValueError(f"{common_name!r} cannot be a device's user name")
    # The name again as a URN (verifiers following the web PKI's profile want a subject alternative name).
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"urn:smartfarm:device:{common_name}")]
    return _leaf(ca, common_name, ExtendedKeyUsageOID.CLIENT_AUTH, names)


# ---- files -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the installation's CA and the broker's certificate lie (the layout of a TLS folder)."""

    folder: Path

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def cert_file(self) -> Path:
        return self.folder / "server.crt"

    @property
    def key_file(self) -> Path:
        return self.folder / "server.key"

    def client(self, common_name: str) -> tuple[Path, Path]:
        """Where ``issue_client`` writes the certificate and the key of ``common_name``."""
        return self.folder / "clients" / f"{common_name}.crt", self.folder / "clients" / f"{common_name}.key"


def write_issued(issued: Issued, cert_file: Path, key_file: Path) -> None:
    """Write a certificate (0644) and its key (0600, never readable by others, not even for a moment)."""
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    replace_file(key_file, issued.key_pem.decode(), 0o600)
    replace_file(cert_file, issued.cert_pem.decode())


def read_issued(cert_file: Path, key_file: Path) -> Issued:
    return Issued(cert_file.read_bytes(), key_file.read_bytes())


def installation_tls(folder: Path, hosts: tuple[str, ...] = BROKER_HOSTS) -> TlsFiles:
    """The installation's CA and broker certificate in ``folder``: made when missing, reused when there (so the
    devices that trust the CA keep trusting the broker). A missing server certificate is made from the CA there."""
    files = TlsFiles(folder)
    if files.ca_file.exists() and files.ca_key.exists():
        ca = read_issued(files.ca_file, files.ca_key)
    else:
        ca = new_ca()
        write_issued(ca, files.ca_file, files.ca_key)
    if not (files.cert_file.exists() and files.key_file.exists()):
        write_issued(server_certificate(ca, hosts), files.cert_file, files.key_file)
    return files


def issue_client(files: TlsFiles, common_name: str) -> tuple[Path, Path]:
    """A client certificate for ``common_name`` (a device id) signed by the CA in ``files``, written beside it;
    its certificate and key files."""
    if not (files.ca_file.exists() and files.ca_key.exists()):
        raise ConfigError(f"no CA in {files.folder}: make one first (smartfarm broker-auth FOLDER --tls)")
    cert_file, key_file = files.client(common_name)
    write_issued(client_certificate(read_issued(files.ca_file, files.ca_key), common_name), cert_file, key_file)
    return cert_file, key_file
