"""The CertificateApproval and CertificateSigning admission plugins
(``plugin/pkg/admission/certificates``): writing ``/approval`` of a CertificateSigningRequest
needs ``approve`` on the signer, and setting ``status.certificate`` through ``/status`` needs
``sign`` on it — the resource ``signers`` of certificates.k8s.io, named by the request's
``signerName`` or by its domain with ``/*`` (``kubernetes.io/*``)."""

from __future__ import annotations

from typing import Any

from jobplane.api import errors
from jobplane.api.rbac import Attributes
from jobplane.api.registry import CERTIFICATESIGNINGREQUESTS, ResourceInfo
from jobplane.apiserver.identity import current_user

Obj = dict[str, Any]


def _conditions(obj: Obj | None) -> list[Any]:
    return [(c.get("type"), c.get("status", "True")) for c in ((obj or {}).get("status") or {}).get("conditions") or ()
            if isinstance(c, dict)]


class CertificateSignerCheck:
    def __init__(self, authorizer: Any) -> None:
        self.authorizer = authorizer

    def _may(self, verb: str, signer: str) -> bool:
        user = current_user.get()
        if user is None:
            return True  # a trusted in-process caller
        names = [signer]
        if "/" in signer:
            names.append(signer.split("/", 1)[0] + "/*")
        return any(self.authorizer.authorize(user, Attributes(verb, True, "", "certificates.k8s.io", "signers", "",
                                                              n))[0] for n in names)

    async def admit(self, op: str, info: ResourceInfo, new: Obj | None, old: Obj | None,
                    subresource: str | None = None) -> None:
        if info is not CERTIFICATESIGNINGREQUESTS or op != "UPDATE" or new is None:
            return
        signer = str(((old or new).get("spec") or {}).get("signerName") or "")
        name = ((new.get("metadata") or {}).get("name")) or ""
        user = current_user.get()
        if subresource == "approval" and _conditions(new) != _conditions(old) and not self._may("approve", signer):
            raise errors.StatusError(403, "Forbidden", f'certificatesigningrequests.certificates.k8s.io "{name}" is '
                                     f'forbidden: user not permitted to approve requests with signerName "{signer}"',
                                     {"name": name, "group": "certificates.k8s.io",
                                      "kind": "certificatesigningrequests"})
        if subresource == "status" and ((new.get("status") or {}).get("certificate") !=
                                        ((old or {}).get("status") or {}).get("certificate")) \
                and not self._may("sign", signer):
            who = user.name if user else ""
            raise errors.StatusError(403, "Forbidden", f'certificatesigningrequests.certificates.k8s.io "{name}" is '
                                     f'forbidden: user "{who}" not permitted to sign requests with signerName '
                                     f'"{signer}"', {"name": name, "group": "certificates.k8s.io",
                                                     "kind": "certificatesigningrequests"})
