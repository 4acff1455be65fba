"""PKI, token and kubeconfig: created once, private, reused across restarts."""

from __future__ import annotations

import base64
import ssl
import stat

import yaml
from cryptography import x509

from jobplane.apiserver import auth, kubeconfig, pki


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_pki_created_private_and_reused(tmp_path):
    d = tmp_path / "pki"
    first = pki.ensure_pki(d, "127.0.0.1")
    assert _mode(d / pki.CA_KEY) == 0o600 and _mode(d / pki.SERVER_KEY) == 0o600
    ca_before = first.ca_pem()
    cert_before = first.server_cert.read_bytes()
    second = pki.ensure_pki(d, "127.0.0.1")
    assert second.ca_pem() == ca_before and second.server_cert.read_bytes() == cert_before
    cert = x509.load_pem_x509_certificate(cert_before)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(i) for i in san.get_values_for_type(x509.IPAddress)}
    # The server certificate chains to the CA.
    ca = x509.load_pem_x509_certificate(ca_before)
    cert.verify_directly_issued_by(ca)
    assert isinstance(second.ssl_context(), ssl.SSLContext)


def test_pki_reissues_server_cert_for_new_host_with_same_ca(tmp_path):
    d = tmp_path / "pki"
    first = pki.ensure_pki(d, "127.0.0.1")
    ca = first.ca_pem()
    old = first.server_cert.read_bytes()
    again = pki.ensure_pki(d, "jobplane.example")
    assert again.ca_pem() == ca and again.server_cert.read_bytes() != old
    cert = x509.load_pem_x509_certificate(again.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "jobplane.example" in san.get_values_for_type(x509.DNSName)


def test_token_generated_once(tmp_path):
    token = auth.ensure_token(tmp_path)
    assert len(token) >= 32 and _mode(tmp_path / auth.TOKEN_FILE) == 0o600
    assert auth.ensure_token(tmp_path) == token
    a = auth.TokenAuthenticator(token)
    assert a.check(f"Bearer {token}")
    assert not a.check(None) and not a.check("Bearer x") and not a.check(token)
    assert a.is_public("/healthz") and a.is_public("/version") and not a.is_public("/api")


def test_kubeconfig(tmp_path):
    path = tmp_path / "kubeconfig"
    kubeconfig.write_kubeconfig(path, "https://127.0.0.1:1234", b"PEM", "tok")
    assert _mode(path) == 0o600
    cfg = yaml.safe_load(path.read_text())
    assert cfg["current-context"] == "jobplane"
    cluster = cfg["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:1234"
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"PEM"
    assert cfg["users"][0]["user"]["token"] == "tok"
