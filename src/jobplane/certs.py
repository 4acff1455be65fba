"""X.509 helpers shared by the API server's PKI (``apiserver.pki``) and the node agent's
self-signed serving certificate (``agent.logserver``): key encoding, private file writes,
the names a serving certificate must cover, and the certificate builder they share."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def subject_alt_names(dns: list[str], ips: list[str]) -> x509.SubjectAlternativeName:
    return x509.SubjectAlternativeName(
        [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def cert_builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
                 days: int) -> x509.CertificateBuilder:
    """Subject, issuer and ``key``'s public key with a random serial, valid from five
    minutes ago (clock skew) for ``days`` days."""
    now = utcnow()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def serving_cert_builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int,
                         dns: list[str], ips: list[str]) -> x509.CertificateBuilder:
    """``cert_builder`` plus what a TLS server certificate carries: the names, not a CA,
    server auth."""
    return (
        cert_builder(subject, issuer, key, days)
        .add_extension(subject_alt_names(dns, ips), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )


def write_key_and_cert(key_path: Path, key: ec.EllipticCurvePrivateKey, cert_path: Path,
                       cert: x509.Certificate) -> None:
    """Both as PEM, mode 0600, the key first."""
    write_private(key_path, key_pem(key))
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def covers(cert: x509.Certificate, dns: list[str], ips: list[str], min_days_left: int = 30) -> bool:
    """The certificate names every DNS name and IP and is valid for ``min_days_left`` more days."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    expires = cert.not_valid_after_utc
    return set(dns) <= have_dns and set(ips) <= have_ips and \
        expires > utcnow() + datetime.timedelta(days=min_days_left)


def ensure_self_signed(cert_path: Path, key_path: Path, common_name: str, dns: list[str], ips: list[str],
                       days: int = 365) -> None:
    """A self-signed serving certificate, as kubelet makes for itself when it is given none;
    re-issued when the names change or it nears expiry."""
    if cert_path.exists() and key_path.exists() and \
            covers(x509.load_pem_x509_certificate(cert_path.read_bytes()), dns, ips):
        return
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = serving_cert_builder(name, name, key, days, dns, ips).sign(key, hashes.SHA256())
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    write_key_and_cert(key_path, key, cert_path, cert)
