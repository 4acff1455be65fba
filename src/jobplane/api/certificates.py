"""certificates.k8s.io/v1 CertificateSigningRequest: validation and the three write strategies
(main resource, ``/approval``, ``/status``), after upstream's ``pkg/registry/certificates``
and ``pkg/apis/certificates/validation``.

- create: status is cleared; ``spec.request`` must be a PEM "CERTIFICATE REQUEST" whose
  signature checks out; ``signerName`` and ``usages`` are required; the requester's
  identity (``spec.username``/``uid``/``groups``/``extra``) is filled in by the API server
  (``apiserver`` admission), never taken from the body;
- update: spec and status are immutable through the main resource;
- ``/approval``: only the Approved and Denied conditions change (mutually exclusive,
  never removed);
- ``/status``: only ``status.certificate`` (set once) and the Failed condition change.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from jobplane.api.errors import FieldError, invalid, not_supported, required
from jobplane.api.errors import forbidden as forbidden_field

Obj = dict[str, Any]

GROUP = "certificates.k8s.io"
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
APISERVER_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"

USAGES = ("signing", "digital signature", "content commitment", "key encipherment", "key agreement",
          "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
          "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
          "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc")
APPROVAL_TYPES = ("Approved", "Denied")
CONDITION_TYPES = ("Approved", "Denied", "Failed")


def request_pem(obj: Obj) -> bytes | None:
    """``spec.request`` decoded (base64 in JSON), or None when it is not base64."""
    raw = (obj.get("spec") or {}).get("request")
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_request(obj: Obj) -> Any:
    """The ``x509.CertificateSigningRequest`` of ``spec.request`` (signature checked), or None."""
    from cryptography import x509

    pem = request_pem(obj)
    if pem is None or b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        return None
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError:
        return None
    return csr if csr.is_signature_valid else None


def _conditions(obj: Obj) -> list[Obj]:
    return [c for c in ((obj.get("status") or {}).get("conditions") or ()) if isinstance(c, dict)]


def has_condition(obj: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status", "True") == "True" for c in _conditions(obj))


def validate(obj: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = obj.get("spec") or {}
    if not spec.get("request"):
        errs.append(required("spec.request", ""))
    elif parse_request(obj) is None:
        errs.append(invalid("spec.request", "<omitted>", "PEM block type must be CERTIFICATE REQUEST"))
    signer = spec.get("signerName")
    if not signer:
        errs.append(required("spec.signerName", ""))
    elif "/" not in str(signer):
        errs.append(invalid("spec.signerName", signer, "must be a fully qualified domain and path of the form "
                                                       "'example.com/signer-name'"))
    usages = spec.get("usages")
    if not usages:
        errs.append(required("spec.usages", ""))
    else:
        for i, u in enumerate(usages):
            if u not in USAGES:
                errs.append(not_supported(f"spec.usages[{i}]", u, list(USAGES)))
    seconds = spec.get("expirationSeconds")
    if seconds is not None and (not isinstance(seconds, int) or seconds < 600):
        errs.append(invalid("spec.expirationSeconds", seconds, "may not specify a duration less than 600 seconds "
                                                                "(10 minutes)"))
    errs.extend(_validate_conditions(obj))
    return errs


def _validate_conditions(obj: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, c in enumerate(_conditions(obj)):
        ctype = c.get("type")
        if ctype not in CONDITION_TYPES:
            errs.append(not_supported(f"status.conditions[{i}].type", ctype, list(CONDITION_TYPES)))
            continue
        if ctype in seen:
            errs.append(invalid(f"status.conditions[{i}].type", ctype, "duplicate condition type"))
        seen.add(ctype)
        if c.get("status", "True") != "True":
            errs.append(not_supported(f"status.conditions[{i}].status", c.get("status"), ["True"]))
    if "Approved" in seen and "Denied" in seen:
        errs.append(invalid("status.conditions", "Approved", "Approved and Denied conditions are mutually exclusive"))
    return errs


def _default_condition_status(obj: Obj) -> None:
    for c in _conditions(obj):
        c.setdefault("status", "True")


def prepare_create(obj: Obj) -> None:
    obj.pop("status", None)


def prepare_update(new: Obj, old: Obj) -> list[FieldError]:
    """Main resource: spec and status stay as they are (metadata may change)."""
    new["spec"] = old.get("spec")
    if "status" in old:
        new["status"] = old["status"]
    else:
        new.pop("status", None)
    return []


def _kept(old: Obj, new: Obj, types: tuple[str, ...], path: str) -> list[FieldError]:
    """Conditions of ``types`` in ``old`` may not disappear from ``new``."""
    have = {c.get("type") for c in _conditions(new)}
    return [forbidden_field(path, f"updates may not remove a condition of type {t!r}")
            for t in {c.get("type") for c in _conditions(old)} if t in types and t not in have]


def prepare_approval(new: Obj, old: Obj) -> list[FieldError]:
    """``/approval``: take only Approved/Denied conditions from ``new``; everything else from old."""
    wanted = [c for c in _conditions(new) if c.get("type") in APPROVAL_TYPES]
    others = [c for c in _conditions(old) if c.get("type") not in APPROVAL_TYPES]
    status = dict(old.get("status") or {})
    status["conditions"] = others + wanted
    new_md = new.get("metadata") or {}
    for k in list(new):
        if k != "metadata":
            new.pop(k)
    new.update({k: v for k, v in old.items() if k not in ("metadata", "status")})
    new["status"] = status
    new["metadata"] = new_md
    _default_condition_status(new)
    errs = _kept(old, new, APPROVAL_TYPES, "status.conditions")
    return errs + _validate_conditions(new)


def prepare_status(new: Obj, old: Obj) -> list[FieldError]:
    """``/status``: spec and the approval conditions from old; the certificate is set once."""
    incoming = new.get("status") or {}
    status: Obj = {}
    cert = incoming.get("certificate")
    old_cert = (old.get("status") or {}).get("certificate")
    errs: list[FieldError] = []
    if old_cert and cert != old_cert:
        errs.append(invalid("status.certificate", "<omitted>", "updates may not modify existing certificate content"))
        cert = old_cert
    if cert:
        status["certificate"] = cert
    approval = [c for c in _conditions(old) if c.get("type") in APPROVAL_TYPES]
    failed = [c for c in (incoming.get("conditions") or ()) if isinstance(c, dict) and c.get("type") not in
              APPROVAL_TYPES]
    if approval or failed:
        status["conditions"] = approval + failed
    new["spec"] = old.get("spec")
    new["status"] = status
    _default_condition_status(new)
    errs += _kept(old, new, ("Failed",), "status.conditions")
    return errs + _validate_conditions(new)
