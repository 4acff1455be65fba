"""Image references and pull policy, as the kubelet treats them. Pure functions.

Upstream: ``pkg/kubelet/images/image_manager.go`` (``applyDefaultImageTag``,
``shouldPullImage``, the events and their messages), ``github.com/distribution/reference``
(the grammar and ``ParseNormalizedNamed``: ``busybox`` is ``docker.io/library/busybox``),
``pkg/credentialprovider`` (``.dockerconfigjson`` Secrets).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# distribution/reference's grammar (reference/regexp.go), anchored.
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
DEFAULT_DOMAIN = "docker.io"
NAME_TOTAL_LENGTH_MAX = 255

# The container waiting reasons (pkg/kubelet/images/types.go) and the kubelet's event reasons.
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
INVALID_IMAGE_NAME = "InvalidImageName"


class InvalidImage(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: ``name`` fully qualified (``docker.io/library/busybox``)."""

    name: str
    tag: str | None
    digest: str | None

    @property
    def pullable(self) -> str:
        """What to pull: the normalized name with its tag (``latest`` when neither tag nor digest)."""
        if self.digest:
            return f"{self.name}{':' + self.tag if self.tag else ''}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"


def parse(image: str) -> Reference:
    """``ParseNormalizedNamed``: InvalidImage with the reference library's words when the
    string is not an image reference."""
    if not image or _HEX64.match(image):
        raise InvalidImage(f'couldn\'t parse image reference "{image}": invalid reference format')
    m = _REFERENCE.match(image)
    if m is None:
        why = "invalid reference format"
        if _REFERENCE.match(image.lower()):
            why += ": repository name must be lowercase"
        raise InvalidImage(f'couldn\'t parse image reference "{image}": {why}')
    name = m.group("name")
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        name = f"{DEFAULT_DOMAIN}/{name}"
        first, _, rest = name.partition("/")
    if first == DEFAULT_DOMAIN and "/" not in rest:
        name = f"{DEFAULT_DOMAIN}/library/{rest}"
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidImage(f'couldn\'t parse image reference "{image}": repository name must not be more than '
                           f"{NAME_TOTAL_LENGTH_MAX} characters")
    return Reference(name, m.group("tag"), m.group("digest"))


def pull_policy(container: Obj) -> str:
    """The container's ``imagePullPolicy`` (the API defaults it; this covers objects that
    bypassed defaulting): ``Always`` for ``:latest`` or no tag, else ``IfNotPresent``."""
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy)
    image = str(container.get("image") or "")
    try:
        ref = parse(image)
    except InvalidImage:
        return "IfNotPresent"
    return "Always" if not ref.digest and (ref.tag or "latest") == "latest" else "IfNotPresent"


def should_pull(policy: str, present: bool) -> bool:
    """kubelet's ``shouldPullImage``."""
    if policy == "Never":
        return False
    return policy == "Always" or (policy == "IfNotPresent" and not present)


def docker_config(secrets: list[Obj]) -> Obj | None:
    """The ``auths`` of the pod's ``imagePullSecrets`` (``kubernetes.io/dockerconfigjson``,
    or the older ``kubernetes.io/dockercfg``) merged into one ``config.json`` document, the
    first Secret winning for a registry as the kubelet's keyring does; None when none has any."""
    auths: Obj = {}
    for secret in secrets:
        data = secret.get("data") or {}
        try:
            if ".dockerconfigjson" in data:
                doc = json.loads(base64.b64decode(data[".dockerconfigjson"]))
                entries = doc.get("auths") or {}
            elif ".dockercfg" in data:
                entries = json.loads(base64.b64decode(data[".dockercfg"]))
            else:
                continue
        except (ValueError, TypeError):
            continue
        for registry, entry in entries.items() if isinstance(entries, dict) else ():
            if isinstance(entry, dict) and registry not in auths:
                if not entry.get("auth") and entry.get("username") is not None:
                    raw = f"{entry.get('username', '')}:{entry.get('password', '')}".encode()
                    entry = {**entry, "auth": base64.b64encode(raw).decode()}
                auths[registry] = entry
    return {"auths": auths} if auths else None


def pulled_message(image: str, seconds: float, size: int | None) -> str:
    """The ``Pulled`` event after a pull (kubelet 1.32's words)."""
    took = go_seconds(seconds)
    text = f'Successfully pulled image "{image}" in {took} ({took} including waiting).'
    return text + (f" Image size: {size} bytes." if size is not None else "")


def go_seconds(seconds: float) -> str:
    """Go's ``time.Duration`` String for a short duration: ``812ms``, ``1.5s``."""
    if seconds < 1:
        ms = seconds * 1000
        return f"{ms:.6g}ms" if ms >= 1 else f"{seconds * 1e6:.6g}µs"
    return f"{seconds:.9g}s"
