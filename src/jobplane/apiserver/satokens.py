"""Service-account tokens: RS256 JWTs as kube-apiserver issues them for the TokenRequest
subresource (``serviceaccounts/<name>/token``), and their verification for authentication.

The signing key lives in ``<pki>/sa.key`` (0600; ``sa.pub`` beside it), made on first start
and shared by servers given one ``--pki-dir``. Claims follow upstream's bound tokens:
``iss``, ``sub`` ``system:serviceaccount:<ns>:<name>``, ``aud``, ``exp``/``iat``/``nbf``,
``jti`` and the private ``kubernetes.io`` claim naming the namespace, the account (name
and uid) and the object the token is bound to.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://kubernetes.default.svc.cluster.local"
KEY_FILE = "sa.key"
PUB_FILE = "sa.pub"
PREFIX = "system:serviceaccount:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ensure_signing_key(pki_dir: Path) -> rsa.RSAPrivateKey:
    """Load ``sa.key``, creating it (RSA 2048) on first start."""
    path = pki_dir / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    pki_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
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


def key_id(public: rsa.RSAPublicKey) -> str:
    """Upstream's ``keyIDFromPublicKey``: base64url(sha256(PKIX DER))."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64(hashlib.sha256(der).digest())


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
    def __init__(self, key: rsa.RSAPrivateKey, issuer: str = ISSUER) -> None:
        self.key = key
        self.public = key.public_key()
        self.issuer = issuer
        self.kid = key_id(self.public)

    def issue(self, namespace: str, name: str, uid: str, audiences: list[str], now: float, expires: int,
              bound: dict[str, Any] | None = None) -> str:
        private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound:
            private[bound["kind"].lower()] = {"name": bound["name"], "uid": bound.get("uid", "")}
            if bound.get("node"):
                private["node"] = {"name": bound["node"]}
        claims = {"aud": audiences, "exp": int(now) + expires, "iat": int(now), "iss": self.issuer,
                  "jti": str(uuid.uuid4()), "kubernetes.io": private, "nbf": int(now),
                  "sub": f"{PREFIX}{namespace}:{name}"}
        header = {"alg": "RS256", "kid": self.kid}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def verify(self, token: str, now: float) -> Identity | None:
        """The account a token names, when it is ours, well signed and current; else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            if header.get("alg") != "RS256":
                return None
            self.public.verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                               hashes.SHA256())
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, TypeError, AttributeError, InvalidSignature, orjson.JSONDecodeError):
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
