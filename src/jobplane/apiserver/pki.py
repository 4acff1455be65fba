"""The server's TLS material: a private CA and a server certificate it signs.

Kept in ``DIR/pki`` (keys 0600) and reused across restarts, so a kubeconfig written once
keeps working. The server certificate is re-issued (by the same CA) when the set of names
it must cover changes, e.g. a new ``--host``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jobplane.certs import cert_builder, covers, new_key, serving_cert_builder, write_key_and_cert

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"

_CA_DAYS = 3650
_SERVER_DAYS = 825


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    def ssl_context(self) -> ssl.SSLContext:
        """Serves the server certificate and asks for (but does not require) a client
        certificate signed by the CA: kube-apiserver's ``--client-ca-file``. A certificate
        from another CA, or expired, fails the handshake."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.server_cert), str(self.server_key))
        ctx.load_verify_locations(cafile=str(self.ca_cert))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx


def server_names(host: str) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the server certificate must cover for ``host``."""
    dns = ["localhost"]
    ips = ["127.0.0.1", "::1"]
    hostname = socket.gethostname()
    if hostname and hostname not in dns:
        dns.append(hostname)
    if host and host not in ("0.0.0.0", "::"):
        try:
            ipaddress.ip_address(host)
            if host not in ips:
                ips.append(host)
        except ValueError:
            if host not in dns:
                dns.append(host)
    return dns, ips


def _make_ca(pki_dir: Path) -> None:
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobplane-ca")])
    cert = (
        cert_builder(name, name, key, _CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_key_and_cert(pki_dir / CA_KEY, key, pki_dir / CA_CERT, cert)


def _make_server_cert(pki_dir: Path, dns: list[str], ips: list[str]) -> None:
    ca_key = serialization.load_pem_private_key((pki_dir / CA_KEY).read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((pki_dir / CA_CERT).read_bytes())
    ca_public = ca_cert.public_key()
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey) or not isinstance(ca_public, ec.EllipticCurvePublicKey):
        raise ValueError(f"{pki_dir / CA_KEY}: not the EC P-256 key jobplane generates")
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jobplane-apiserver")])
    cert = (
        serving_cert_builder(subject, ca_cert.subject, key, _SERVER_DAYS, dns, ips)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_key_and_cert(pki_dir / SERVER_KEY, key, pki_dir / SERVER_CERT, cert)


def ensure_pki(pki_dir: Path, host: str = "127.0.0.1") -> Pki:
    """Create (or reuse) the CA and a server certificate valid for ``host``."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pki_dir, 0o700)
    if not (pki_dir / CA_CERT).exists() or not (pki_dir / CA_KEY).exists():
        _make_ca(pki_dir)
        for stale in (SERVER_CERT, SERVER_KEY):
            (pki_dir / stale).unlink(missing_ok=True)
    dns, ips = server_names(host)
    cert_path = pki_dir / SERVER_CERT
    fresh = False
    if cert_path.exists() and (pki_dir / SERVER_KEY).exists():
        fresh = covers(x509.load_pem_x509_certificate(cert_path.read_bytes()), dns, ips)
    if not fresh:
        _make_server_cert(pki_dir, dns, ips)
    return Pki(pki_dir / CA_CERT, cert_path, pki_dir / SERVER_KEY)
