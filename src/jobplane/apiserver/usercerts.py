"""Client certificates for people and nodes, signed by the server's CA (``DIR/pki``):
CN = user name, O = groups, as kube-apiserver's X.509 authenticator reads them.

Revocation is a short lifetime plus a deny list: every issued certificate is recorded in
``pki/issued`` (serial, user, expiry) and ``revoke`` copies a user's serials to
``pki/revoked``, which the server checks (``authn.CertDenyList``)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jobplane.apiserver.pki import CA_CERT, CA_KEY
from jobplane.certs import key_pem, new_key, utcnow

ISSUED = "issued"
REVOKED = "revoked"


@dataclass(frozen=True)
class IssuedCert:
    cert_pem: bytes
    key_pem: bytes
    serial: str
    not_after: datetime.datetime


def _append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(line + "\n")


def issue_client_cert(pki_dir: Path, user: str, groups: list[str] | tuple[str, ...] = (),
                      lifetime: datetime.timedelta = datetime.timedelta(hours=24)) -> IssuedCert:
    """A new key and a client-auth certificate for ``user`` in ``groups``, recorded in ``pki/issued``."""
    if not user:
        raise ValueError("a user name is required")
    ca = _load_ca(pki_dir)
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups] +
                        [x509.NameAttribute(NameOID.COMMON_NAME, user)])
    not_after = utcnow() + lifetime
    cert_pem, serial = _sign_client(pki_dir, ca, subject, key.public_key(), not_after,
                                    {**_NO_USAGES, "digital_signature": True}, user)
    return IssuedCert(cert_pem, key_pem(key), serial, not_after)


def revoke(pki_dir: Path, user: str | None = None, serial: str | None = None) -> list[str]:
    """Deny ``serial``, or every certificate issued to ``user``; returns the serials added."""
    serials: list[str] = []
    if serial:
        serials.append(serial.upper())
    if user:
        issued = pki_dir / ISSUED
        if issued.exists():
            for line in issued.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[1] == user:
                    serials.append(parts[0])
    for s in serials:
        _append(pki_dir / REVOKED, s)
    return serials


def _load_ca(pki_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, ec.EllipticCurvePublicKey]:
    ca_key = serialization.load_pem_private_key((pki_dir / CA_KEY).read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((pki_dir / CA_CERT).read_bytes())
    ca_public = ca_cert.public_key()
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey) or not isinstance(ca_public, ec.EllipticCurvePublicKey):
        raise ValueError(f"{pki_dir}: the CA key is not the EC key jobplane makes")
    return ca_key, ca_cert, ca_public


_USAGE_FLAGS = {"digital signature": "digital_signature", "key encipherment": "key_encipherment",
                "content commitment": "content_commitment", "data encipherment": "data_encipherment",
                "key agreement": "key_agreement"}
_NO_USAGES = dict.fromkeys(_USAGE_FLAGS.values(), False)


def sign_request(pki_dir: Path, request: x509.CertificateSigningRequest, usages: list[str],
                 lifetime: datetime.timedelta) -> tuple[bytes, str]:
    """The csrsigning controller's step for the client signers: a certificate for the
    request's subject and public key, client auth only, valid ``lifetime``; recorded in
    ``pki/issued`` so ``--revoke`` can deny it. Returns (PEM, serial)."""
    ca = _load_ca(pki_dir)
    flags = dict(_NO_USAGES)
    for u in usages:
        if u in _USAGE_FLAGS:
            flags[_USAGE_FLAGS[u]] = True
    flags["digital_signature"] = True  # a TLS client signs the handshake with its key, whatever was asked
    not_after = min(utcnow() + lifetime, ca[1].not_valid_after_utc)
    cn = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    user = str(cn[0].value) if cn else ""
    return _sign_client(pki_dir, ca, request.subject, request.public_key(), not_after, flags, user)


def _sign_client(pki_dir: Path, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, ec.EllipticCurvePublicKey],
                 subject: x509.Name, public_key: CertificatePublicKeyTypes, not_after: datetime.datetime,
                 usage_flags: dict[str, bool], user: str) -> tuple[bytes, str]:
    """One client-auth certificate signed by the CA, recorded in ``pki/issued`` so ``revoke``
    can deny it; both the ``jobplane kubeconfig`` path and the CSR signer come here."""
    ca_key, ca_cert, ca_public = ca
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(utcnow() - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(key_cert_sign=False, crl_sign=False, encipher_only=False,
                                     decipher_only=False, **usage_flags), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    serial = format(cert.serial_number, "X")
    _append(pki_dir / ISSUED, f"{serial} {user} {not_after.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    return cert.public_bytes(serialization.Encoding.PEM), serial
