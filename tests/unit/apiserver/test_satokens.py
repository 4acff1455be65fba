"""Service-account token signing: ES256 with a new data dir's P-256 key, RS256 with an older
data dir's RSA key, the algorithm always the key's."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jobplane.apiserver import satokens

NOW = 1_700_000_000.0
POD = {"kind": "Pod", "name": "p", "uid": "pod-uid", "node": "n1"}


def _part(token: str, i: int) -> dict:
    text = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _write_rsa_key(pki_dir) -> rsa.RSAPrivateKey:
    """``sa.key`` as servers before ES256 made it (RSA 2048, PKCS#8 PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki_dir.mkdir(parents=True)
    (pki_dir / satokens.KEY_FILE).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return key


def test_a_new_data_dir_gets_a_private_p256_key_and_signs_es256(tmp_path):
    key = satokens.ensure_signing_key(tmp_path / "pki")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert stat.S_IMODE(os.stat(tmp_path / "pki" / satokens.KEY_FILE).st_mode) == 0o600
    # the same key on the next start
    again = satokens.ensure_signing_key(tmp_path / "pki")
    assert again.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    tokens = satokens.ServiceAccountTokens(key)
    token = tokens.issue("ns", "sa", "sa-uid", ["api"], NOW, 3600, POD)
    header = _part(token, 0)
    assert header == {"alg": "ES256", "kid": satokens.key_id(key.public_key())}
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 64  # r || s, not DER
    ident = tokens.verify(token, NOW + 10)
    assert ident is not None and ident.username == "system:serviceaccount:ns:sa"
    assert ident.uid == "sa-uid" and ident.bound_to("Pod") == ("p", "pod-uid") and ident.node == "n1"


def test_an_older_data_dirs_rsa_key_keeps_issuing_and_verifying_rs256(tmp_path):
    written = _write_rsa_key(tmp_path / "pki")
    key = satokens.ensure_signing_key(tmp_path / "pki")
    assert isinstance(key, rsa.RSAPrivateKey) and key.private_numbers() == written.private_numbers()
    tokens = satokens.ServiceAccountTokens(key)
    token = tokens.issue("ns", "sa", "sa-uid", [], NOW, 3600)
    assert _part(token, 0) == {"alg": "RS256", "kid": satokens.key_id(key.public_key())}
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 256
    ident = tokens.verify(token, NOW)
    assert ident is not None and ident.namespace == "ns" and ident.name == "sa"


@pytest.mark.parametrize("make", [lambda: ec.generate_private_key(ec.SECP256R1()),
                                  lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)])
def test_a_token_verifies_only_under_its_own_key_and_that_keys_algorithm(make):
    tokens = satokens.ServiceAccountTokens(make())
    token = tokens.issue("ns", "sa", "u", [], NOW, 3600)
    assert tokens.verify(token, NOW) is not None
    # another key of the same kind
    assert satokens.ServiceAccountTokens(make()).verify(token, NOW) is None
    # a tampered claim set
    head, claims, sig = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**_part(token, 1), "sub": "system:serviceaccount:ns:admin"})
                                      .encode()).rstrip(b"=").decode()
    assert tokens.verify(f"{head}.{forged}.{sig}", NOW) is None
    # a header naming another algorithm than the key's is refused before any signature check
    other = "RS256" if tokens.alg == "ES256" else "ES256"
    swapped = base64.urlsafe_b64encode(json.dumps({"alg": other, "kid": tokens.kid}).encode()).rstrip(b"=").decode()
    assert tokens.verify(f"{swapped}.{claims}.{sig}", NOW) is None
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    assert tokens.verify(f"{none_alg}.{claims}.", NOW) is None
    # expired
    assert tokens.verify(token, NOW + 3600) is None


def test_an_es256_signature_of_the_wrong_length_is_refused():
    tokens = satokens.ServiceAccountTokens(ec.generate_private_key(ec.SECP256R1()))
    head, claims, sig = tokens.issue("ns", "sa", "u", [], NOW, 3600).split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    short = base64.urlsafe_b64encode(raw[:-1]).rstrip(b"=").decode()
    assert tokens.verify(f"{head}.{claims}.{short}", NOW) is None


def test_an_unsupported_key_is_refused_at_load(tmp_path):
    key = ec.generate_private_key(ec.SECP256K1())
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / satokens.KEY_FILE).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ValueError, match="unsupported service-account signing key"):
        satokens.ensure_signing_key(tmp_path / "pki")


def test_a_remembered_signature_still_expires_and_the_memory_is_bounded(monkeypatch):
    tokens = satokens.ServiceAccountTokens(ec.generate_private_key(ec.SECP256R1()))
    token = tokens.issue("ns", "sa", "u", [], NOW, 600)
    checks = []
    real = tokens._verify
    monkeypatch.setattr(tokens, "_verify", lambda sig, data: (checks.append(1), real(sig, data)))
    assert tokens.verify(token, NOW) is not None and tokens.verify(token, NOW + 1) is not None
    assert len(checks) == 1  # the second request did not verify the signature again
    assert tokens.verify(token, NOW + 600) is None  # but its expiry is checked every time
    head, claims, sig = token.split(".")
    bad = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert tokens.verify(f"{head}.{claims}.{bad}", NOW) is None  # another string: checked again
    monkeypatch.setattr(satokens, "VERIFIED_CACHE", 3)
    for i in range(5):
        assert tokens.verify(tokens.issue("ns", f"sa{i}", "u", [], NOW, 600), NOW) is not None
    assert len(tokens._checked) == 3
