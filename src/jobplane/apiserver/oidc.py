"""Service-account issuer discovery: the OIDC configuration and the JSON Web Key Set at
``/.well-known/openid-configuration`` and ``/openid/v1/jwks`` (upstream's
ServiceAccountIssuerDiscovery, GA since 1.21).

Why: a relying party outside the server (a cloud's workload identity federation, Vault's
Kubernetes auth, any OIDC library) checks a pod's projected service-account token against the
issuer's published keys instead of calling TokenReview. RBAC lets every service account read
them (``system:service-account-issuer-discovery``), as upstream's bootstrap policy does.

Documents are rendered from the signing key as upstream renders them (go-jose's field order).
One deviation: upstream's ``jwks_uri`` is ``--service-account-jwks-uri`` or the server's
external address; jobplane has no fixed external address (``--port 0``, any bind address),
so it names the address the client reached the server at.
"""

from __future__ import annotations

from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jobplane.apiserver.satokens import ServiceAccountTokens, b64url

CONFIG_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
PATHS = frozenset({CONFIG_PATH, CONFIG_PATH + "/", JWKS_PATH, JWKS_PATH + "/"})
JWKS_CONTENT_TYPE = "application/jwk-set+json"  # RFC 7517 §8.5.1
CACHE_CONTROL = "public, max-age=3600"  # upstream overrides its `no-cache, private` here


def _uint(value: int, size: int | None = None) -> str:
    """base64url of a big-endian unsigned integer: minimal, or ``size`` bytes (EC coordinates)."""
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(length, "big"))


def jwk(tokens: ServiceAccountTokens) -> dict[str, Any]:
    """The signing key's public half as a JWK (``use``, ``kty``, ``kid``, ``crv``, ``alg``, then
    the key's numbers)."""
    public = tokens.public
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {"use": "sig", "kty": "RSA", "kid": tokens.kid, "alg": tokens.alg,
                "n": _uint(numbers.n), "e": _uint(numbers.e)}
    assert isinstance(public, ec.EllipticCurvePublicKey)
    size = (public.curve.key_size + 7) // 8
    point = public.public_numbers()
    return {"use": "sig", "kty": "EC", "kid": tokens.kid, "crv": f"P-{public.curve.key_size}",
            "alg": tokens.alg, "x": _uint(point.x, size), "y": _uint(point.y, size)}


def keyset_json(tokens: ServiceAccountTokens) -> bytes:
    return orjson.dumps({"keys": [jwk(tokens)]})


def config_json(tokens: ServiceAccountTokens, host: str) -> bytes:
    """The discovery document; ``host`` (``name:port``) is where the key set is served."""
    return orjson.dumps({
        "issuer": tokens.issuer,
        "jwks_uri": f"https://{host}{JWKS_PATH}",
        "response_types_supported": ["id_token"],  # Kubernetes only issues ID tokens
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [tokens.alg],
    })
