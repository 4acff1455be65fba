"""Bootstrap tokens, as kubeadm makes them and kube-apiserver's bootstrap-token authenticator
reads them (``plugin/pkg/auth/authenticator/token/bootstrap``).

A token is ``<id>.<secret>`` (``[a-z0-9]{6}.[a-z0-9]{16}``), kept as the Secret
``kube-system/bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token`` with the keys
``token-id``, ``token-secret``, ``expiration`` (RFC 3339), ``usage-bootstrap-authentication``
and ``auth-extra-groups``. It authenticates as ``system:bootstrap:<id>`` in the group
``system:bootstrappers`` (plus the extra groups) while the Secret exists, is not expired and
is not being deleted. Its only use here: a node agent exchanges it for a client certificate
through a CertificateSigningRequest (``jobplane agent --bootstrap-token``).
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import string
from typing import Any

from jobplane.api import meta
from jobplane.apiserver.identity import UserInfo, authenticated

NAMESPACE = "kube-system"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
USER_PREFIX = "system:bootstrap:"
GROUP = "system:bootstrappers"
# kubeadm's default group for node tokens; bound to node-bootstrapper and node-client approval
DEFAULT_GROUP = "system:bootstrappers:jobplane:default-node-token"
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_ALPHABET = string.ascii_lowercase + string.digits

Obj = dict[str, Any]


def generate() -> str:
    """A new random token (kubeadm's ``GenerateBootstrapToken``)."""
    pick = lambda n: "".join(secrets.choice(_ALPHABET) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_for(token: str, expires_at: float, groups: list[str] | None = None,
               description: str = "") -> Obj:
    """The Secret that makes ``token`` valid until ``expires_at`` (unix time)."""
    match = TOKEN_RE.match(token)
    if not match:
        raise ValueError("a bootstrap token has the form [a-z0-9]{6}.[a-z0-9]{16}")
    token_id, token_secret = match.groups()
    data = {"token-id": token_id, "token-secret": token_secret, "expiration": meta.rfc3339(expires_at),
            "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
            "auth-extra-groups": ",".join(groups if groups is not None else [DEFAULT_GROUP])}
    if description:
        data["description"] = description
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": SECRET_PREFIX + token_id, "namespace": NAMESPACE},
            "data": {k: _b64(v) for k, v in data.items()}}


def _field(secret: Obj, key: str) -> str:
    raw = (secret.get("data") or {}).get(key)
    if not raw:
        return ""
    try:
        return base64.b64decode(raw).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def user_for(token: str, secret: Obj | None, now: float) -> UserInfo | None:
    """The bootstrap user ``token`` stands for given its Secret, or None (upstream's checks:
    type, id and secret match, not expired, not deleted, usage allowed, groups well formed)."""
    match = TOKEN_RE.match(token)
    if not match or secret is None:
        return None
    token_id, token_secret = match.groups()
    if secret.get("type") != SECRET_TYPE or (secret.get("metadata") or {}).get("deletionTimestamp"):
        return None
    if _field(secret, "token-id") != token_id:
        return None
    if not hmac.compare_digest(_field(secret, "token-secret").encode(), token_secret.encode()):
        return None
    if is_expired(secret, now):
        return None
    if _field(secret, "usage-bootstrap-authentication") != "true":
        return None
    groups = [GROUP]
    for g in _field(secret, "auth-extra-groups").split(","):
        g = g.strip()
        if not g:
            continue
        if not g.startswith(GROUP + ":"):
            return None  # upstream refuses the token when a group is outside system:bootstrappers
        groups.append(g)
    return authenticated(USER_PREFIX + token_id, groups)


def is_expired(secret: Obj, now: float) -> bool:
    """For the token cleaner: an expiration in the past."""
    expiration = _field(secret, "expiration")
    if not expiration:
        return False
    try:
        at = meta.parse_time(expiration)
    except ValueError:
        return True  # unreadable: treat as expired (upstream refuses it)
    return at is None or at <= now


def authenticator(service: Any) -> Any:
    """A token authenticator for the chain: the Secret is read from the store per request
    (bootstrap tokens are used once per node, so no cache)."""
    from jobplane.api.registry import SECRETS
    from jobplane.storage.base import KeyNotFound

    async def authenticate(token: str) -> UserInfo | None:
        match = TOKEN_RE.match(token)
        if not match:
            return None
        try:
            secret = await service.store.get(SECRETS.storage_key(NAMESPACE, SECRET_PREFIX + match.group(1)))
        except KeyNotFound:
            return None
        return user_for(token, secret, service.clock.now())

    return authenticate
