"""Service-account tokens: JWTs as kube-apiserver issues them for the TokenRequest
subresource (``serviceaccounts/<name>/token``), and their verification for authentication.

The signing key lives in ``<pki>/sa.key`` (0600; ``sa.pub`` beside it), made on first start
and shared by servers given one ``--pki-dir``. A new key is ECDSA P-256 and signs ES256: one
token per pod (kubelet's kube-api-access volume) made RSA-2048's 0.75 ms signature 6 % of
the server's event loop, and P-256 signs in about a tenth of that (bench/RESULTS.md §16b).
kube-apiserver takes either kind as ``--service-account-signing-key-file`` and names the
algorithm after the key, as here: a data dir made before keeps its RSA key and RS256 tokens,
and a token verifies only under its key's algorithm.

Claims follow upstream's bound tokens: ``iss``, ``sub`` ``system:serviceaccount:<ns>:<name>``,
``aud``, ``exp``/``iat``/``nbf``, ``jti`` and the private ``kubernetes.io`` claim naming the
namespace, the account (name and uid) and the object the token is bound to.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from jobplane.api import randomness

ISSUER = "https://kubernetes.default.svc.cluster.local"
KEY_FILE = "sa.key"
PUB_FILE = "sa.pub"
PREFIX = "system:serviceaccount:"
VERIFIED_CACHE = 1024  # tokens whose signature was checked (see ServiceAccountTokens._signed_claims)

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# JWS algorithm, hash and coordinate size by curve (upstream's signerFromECDSAPrivateKey)
_EC_ALGORITHMS: dict[str, tuple[str, type[hashes.HashAlgorithm], int]] = {
    "secp256r1": ("ES256", hashes.SHA256, 32),
    "secp384r1": ("ES384", hashes.SHA384, 48),
    "secp521r1": ("ES512", hashes.SHA512, 66),
}


def b64url(data: bytes) -> str:
    """base64url without padding (JWS, JWK)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _usable(key: object) -> SigningKey:
    if isinstance(key, rsa.RSAPrivateKey) or (isinstance(key, ec.EllipticCurvePrivateKey)
                                               and key.curve.name in _EC_ALGORITHMS):
        return key
    raise ValueError(f"unsupported service-account signing key {type(key).__name__}: RSA or ECDSA P-256/384/521")


def ensure_signing_key(pki_dir: Path) -> SigningKey:
    """Load ``sa.key`` (RSA or ECDSA), creating it (ECDSA P-256) on first start."""
    path = pki_dir / KEY_FILE
    if path.exists():
        return _usable(serialization.load_pem_private_key(path.read_bytes(), password=None))
    pki_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = pki_dir / f".{KEY_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # a second server starting at once keeps the first key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    (pki_dir / PUB_FILE).write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return ensure_signing_key(pki_dir)  # whichever key won the race


def key_id(public: PublicKey) -> str:
    """Upstream's ``keyIDFromPublicKey``: base64url(sha256(PKIX DER))."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def algorithm(public: PublicKey) -> str:
    """The JWS ``alg`` a key signs with: RS256 for RSA, ES256/384/512 by ECDSA curve."""
    if isinstance(public, rsa.RSAPublicKey):
        return "RS256"
    return _EC_ALGORITHMS[public.curve.name][0]


@dataclass(frozen=True)
class Identity:
    namespace: str
    name: str
    uid: str
    # what the token is bound to (``kubernetes.io`` claims): kind -> (name, uid)
    bound: tuple[tuple[str, str, str], ...] = ()
    node: str = ""  # the bound pod's node when it was issued
    jti: str = ""

    def bound_to(self, kind: str) -> tuple[str, str] | None:
        for k, name, uid in self.bound:
            if k == kind:
                return name, uid
        return None

    @property
    def username(self) -> str:
        return f"{PREFIX}{self.namespace}:{self.name}"


class ServiceAccountTokens:
    def __init__(self, key: SigningKey, issuer: str = ISSUER) -> None:
        self.key = key
        self.public: PublicKey = key.public_key()
        self.issuer = issuer
        self.kid = key_id(self.public)
        self.alg = algorithm(self.public)
        self._header = b64url(orjson.dumps({"alg": self.alg, "kid": self.kid}))
        self._checked: OrderedDict[str, dict[str, Any]] = OrderedDict()  # token -> claims, signature good

    def _sign(self, data: bytes) -> bytes:
        """The JWS signature: PKCS#1 v1.5 for RSA; for ECDSA the fixed-size ``r || s`` of RFC
        7518 §3.4, not the DER the library returns."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        _, hash_type, size = _EC_ALGORITHMS[self.key.curve.name]
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hash_type())))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def _verify(self, signature: bytes, data: bytes) -> None:
        """Raises ``InvalidSignature`` unless ``signature`` is this key's over ``data``."""
        if isinstance(self.public, rsa.RSAPublicKey):
            self.public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            return
        _, hash_type, size = _EC_ALGORITHMS[self.public.curve.name]
        if len(signature) != 2 * size:
            raise InvalidSignature
        der = encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
        self.public.verify(der, data, ec.ECDSA(hash_type()))

    def issue(self, namespace: str, name: str, uid: str, audiences: list[str], now: float, expires: int,
              bound: dict[str, Any] | None = None) -> str:
        private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound:
            private[bound["kind"].lower()] = {"name": bound["name"], "uid": bound.get("uid", "")}
            if bound.get("node"):
                private["node"] = {"name": bound["node"]}
        claims = {"aud": audiences, "exp": int(now) + expires, "iat": int(now), "iss": self.issuer,
                  "jti": randomness.uuid4(), "kubernetes.io": private, "nbf": int(now),
                  "sub": f"{PREFIX}{namespace}:{name}"}
        signing_input = f"{self._header}.{b64url(orjson.dumps(claims))}"
        return f"{signing_input}.{b64url(self._sign(signing_input.encode()))}"

    def _signed_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this key signed, under this key's algorithm; else None. Kept
        for the next request with the same token (clients reuse theirs, and an ES256
        verification costs 90 µs): only a good signature is remembered, and the caller
        checks the times every time."""
        claims = self._checked.get(token)
        if claims is not None:
            return claims
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            if header.get("alg") != self.alg:  # the key decides; never the token
                return None
            self._verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode())
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, TypeError, AttributeError, InvalidSignature, orjson.JSONDecodeError):
            return None
        if not isinstance(claims, dict):
            return None
        self._checked[token] = claims
        if len(self._checked) > VERIFIED_CACHE:
            self._checked.popitem(last=False)
        return claims

    def verify(self, token: str, now: float) -> Identity | None:
        """The account a token names, when it is ours, well signed and current; else None."""
        claims = self._signed_claims(token)
        if claims is None:
            return None
        if claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int):
            return None
        if now >= claims["exp"] or now + 60 < int(claims.get("nbf") or 0):
            return None
        private = claims.get("kubernetes.io") or {}
        account = private.get("serviceaccount") or {}
        sub = str(claims.get("sub") or "")
        if not sub.startswith(PREFIX) or not account.get("name"):
            return None
        bound: list[tuple[str, str, str]] = []
        for kind in ("Pod", "Secret", "Node"):
            ref = private.get(kind.lower())
            if isinstance(ref, dict) and ref.get("name") and (kind != "Node" or ref.get("uid")):
                bound.append((kind, str(ref["name"]), str(ref.get("uid") or "")))
        node_ref = private.get("node")
        node = str(node_ref.get("name") or "") if isinstance(node_ref, dict) and private.get("pod") else ""
        return Identity(private.get("namespace") or "", account["name"], account.get("uid") or "", tuple(bound), node,
                        str(claims.get("jti") or ""))
