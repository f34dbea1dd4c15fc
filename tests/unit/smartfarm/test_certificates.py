"""The installation's certificates: the broker's verifies against the CA for each of its names, a device's as a
client with its id as common name, keys are written for their owner only and reused once there."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from smartfarm.certificates import (
    BROKER_HOSTS,
    TlsFiles,
    client_certificate,
    installation_tls,
    issue_client,
    new_ca,
    server_certificate,
)
from smartfarm.errors import ConfigError


def test_the_broker_certificate_verifies_against_the_ca_for_each_of_its_names() -> None:
    ca = new_ca()
    server = server_certificate(ca)
    store = Store([ca.certificate])
    for host in BROKER_HOSTS:
        try:
            name: x509.DNSName | x509.IPAddress = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host)
        chain = PolicyBuilder().store(store).build_server_verifier(name).verify(server.certificate, [])
        assert chain[-1] == ca.certificate
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName("elsewhere.example")).verify(
            server.certificate, []
        )
    with pytest.raises(VerificationError):  # another installation's CA does not vouch for it
        PolicyBuilder().store(Store([new_ca().certificate])).build_server_verifier(x509.DNSName("localhost")).verify(
            server.certificate, []
        )


def test_a_device_certificate_is_a_client_certificate_named_by_the_device() -> None:
    ca = new_ca()
    device = client_certificate(ca, "soil-node-07")
    verified = PolicyBuilder().store(Store([ca.certificate])).build_client_verifier().verify(device.certificate, [])
    assert verified.chain[-1] == ca.certificate
    cn = device.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["soil-node-07"]
    for bad in ("", "a/b", "a+", "#"):
        with pytest.raises(ValueError, match="user name"):
            client_certificate(ca, bad)


def test_keys_are_written_for_their_owner_only_and_the_ca_is_reused(tmp_path: Path) -> None:
    files = installation_tls(tmp_path / "tls")
    for key in (files.ca_key, files.key_file):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca_file.stat().st_mode) == 0o644
    ca, server = files.ca_file.read_bytes(), files.cert_file.read_bytes()
    files.cert_file.unlink()
    again = installation_tls(tmp_path / "tls")
    assert again.ca_file.read_bytes() == ca, "the CA devices trust is kept"
    assert again.cert_file.read_bytes() != server, "a missing server certificate is made again"
    cert_file, key_file = issue_client(again, "valve-1")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    issued = x509.load_pem_x509_certificate(cert_file.read_bytes())
    PolicyBuilder().store(Store([x509.load_pem_x509_certificate(ca)])).build_client_verifier().verify(issued, [])
    with pytest.raises(ConfigError, match="no CA"):
        issue_client(TlsFiles(tmp_path / "empty"), "x")
