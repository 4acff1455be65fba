"""The Node authorizer and NodeRestriction admission, after upstream's
``plugin/pkg/auth/authorizer/node`` and ``plugin/pkg/admission/noderestriction``.

A request from ``system:node:<name>`` (group ``system:nodes``) is judged here:

- Secrets and ConfigMaps (get/list/watch of one named object), PersistentVolumeClaims and
  PersistentVolumes (get) and ``serviceaccounts/token`` (create) only when a pod bound to the
  node uses them: ``node <- pod <- secret|configmap|pvc|serviceaccount``, ``node <- pod <- pvc
  <- pv``. The graph is an index kept from watching pods and claims; a miss is re-checked
  against the store (``recheck``) before it is refused, so a pod bound a moment ago is not
  refused because the index has not seen it yet.
- Leases: only its own, in ``kube-node-lease``.
- Everything else by the node rules (upstream's ``NodeRules``, jobplane's additions marked):
  read services, endpointslices, nodes and pods; write nodes, node status, pod status,
  events; delete pods; evict pods; create CSRs, TokenReviews and SubjectAccessReviews.

NodeRestriction then narrows the writes: a node creates and changes only its own Node and
Lease, updates the status of, deletes and evicts only pods bound to it, creates no pods
(jobplane has no mirror pods), asks tokens only bound to its own pods, and (jobplane's
local-path volumes) changes only the PersistentVolumes it provisioned.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

from jobplane.aio import cancel_and_wait
from jobplane.api import errors
from jobplane.api.rbac import Attributes, Rule, rules_of
from jobplane.api.registry import (
    LEASES,
    NODES,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    PODS,
    ResourceInfo,
)
from jobplane.apiserver.authz import Decision
from jobplane.apiserver.identity import UserInfo, current_user, node_name_of
from jobplane.apiserver.mirror import mirror

Obj = dict[str, Any]
Ref = tuple[str, str, str]  # (resource, namespace, name)
NODE_LEASE_NAMESPACE = "kube-node-lease"
PV_NODE_ANNOTATION = "jobplane.io/node"  # set by the local-path provisioner on volumes it made
NO_PATH = "no relationship found between node '{}' and this object"

_READ = ["get", "list", "watch"]


def _rule(verbs: list[str], groups: list[str], resources: list[str]) -> Obj:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


# upstream's NodeRules (bootstrappolicy), as far as jobplane serves the kinds
NODE_RULES: tuple[Rule, ...] = rules_of({"rules": [
    _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
    _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews", "subjectaccessreviews"]),
    _rule(_READ, [""], ["services"]),
    _rule(["create", "get", "list", "watch"], [""], ["nodes"]),
    _rule(["patch", "update"], [""], ["nodes/status"]),
    _rule(["patch", "update"], [""], ["nodes"]),
    _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    _rule(_READ, [""], ["pods"]),
    _rule(["create", "delete"], [""], ["pods"]),
    _rule(["patch", "update"], [""], ["pods/status"]),
    _rule(["create"], [""], ["pods/eviction"]),
    _rule(["get"], [""], ["endpoints"]),
    _rule(["create", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
    _rule(_READ, ["node.k8s.io"], ["runtimeclasses"]),
    # jobplane: pod DNS names (agent/dns.py) come from Services and EndpointSlices
    _rule(_READ, ["discovery.k8s.io"], ["endpointslices"]),
    # jobplane: the node half of local-path volumes (agent/pvcleanup.py) watches volumes and
    # drops its cleanup finalizer; NodeRestriction limits the writes to the node's own volumes
    _rule(["list", "watch", "patch", "update"], [""], ["persistentvolumes"]),
]})


def pod_references(pod: Obj) -> set[Ref]:
    """What a pod uses that its node may read: Secrets, ConfigMaps, claims, its service account."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or ""
    name = (pod.get("metadata") or {}).get("name") or ""
    out: set[Ref] = {("serviceaccounts", ns, spec.get("serviceAccountName") or spec.get("serviceAccount")
                      or "default")}
    for s in spec.get("imagePullSecrets") or ():
        if isinstance(s, dict) and s.get("name"):
            out.add(("secrets", ns, s["name"]))
    containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ()),
                  *(spec.get("ephemeralContainers") or ())]
    for c in containers:
        if not isinstance(c, dict):
            continue
        for src in c.get("envFrom") or ():
            if (src.get("secretRef") or {}).get("name"):
                out.add(("secrets", ns, src["secretRef"]["name"]))
            if (src.get("configMapRef") or {}).get("name"):
                out.add(("configmaps", ns, src["configMapRef"]["name"]))
        for env in c.get("env") or ():
            ref = (env or {}).get("valueFrom") or {}
            if (ref.get("secretKeyRef") or {}).get("name"):
                out.add(("secrets", ns, ref["secretKeyRef"]["name"]))
            if (ref.get("configMapKeyRef") or {}).get("name"):
                out.add(("configmaps", ns, ref["configMapKeyRef"]["name"]))
    for vol in spec.get("volumes") or ():
        if not isinstance(vol, dict):
            continue
        if (vol.get("secret") or {}).get("secretName"):
            out.add(("secrets", ns, vol["secret"]["secretName"]))
        if (vol.get("configMap") or {}).get("name"):
            out.add(("configmaps", ns, vol["configMap"]["name"]))
        if (vol.get("persistentVolumeClaim") or {}).get("claimName"):
            out.add(("persistentvolumeclaims", ns, vol["persistentVolumeClaim"]["claimName"]))
        if "ephemeral" in vol:
            out.add(("persistentvolumeclaims", ns, f"{name}-{vol.get('name', '')}"))
        for src in (vol.get("projected") or {}).get("sources") or ():
            if (src.get("secret") or {}).get("name"):
                out.add(("secrets", ns, src["secret"]["name"]))
            if (src.get("configMap") or {}).get("name"):
                out.add(("configmaps", ns, src["configMap"]["name"]))
    return out


REFSETS_MAX = 4096


def _pod_node(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


class NodeGraph:
    """Which node may reach which object, kept from watching pods and claims."""

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], tuple[str, frozenset[Ref]]] = {}  # (ns, name) -> (node, refs)
        self.refs: dict[str, Counter[Ref]] = {}  # node -> references of its pods
        self.claims: dict[tuple[str, str], str] = {}  # (ns, claim) -> bound volume name
        # one frozenset per distinct set of references: the pods of one template share it
        # (~0.4 KB a pod less, 5 MB at PodGC's 12,500 finished pods); cleared whole when full
        self._refsets: dict[frozenset[Ref], frozenset[Ref]] = {}
        self._tasks: list[asyncio.Task] = []

    def apply_pod(self, event: str, pod: Obj) -> None:
        md = pod.get("metadata") or {}
        key = (md.get("namespace") or "", md.get("name") or "")
        old = self.pods.pop(key, None)
        if old is not None:
            counter = self.refs.get(old[0])
            if counter is not None:
                counter.subtract(old[1])
                for ref in old[1]:
                    if counter[ref] <= 0:
                        del counter[ref]
        node = _pod_node(pod)
        if event == "DELETED" or not node:
            return
        refs = frozenset(pod_references(pod))
        shared = self._refsets.get(refs)
        if shared is None:
            if len(self._refsets) >= REFSETS_MAX:
                self._refsets.clear()
            shared = self._refsets[refs] = refs
        self.pods[key] = (node, shared)
        self.refs.setdefault(node, Counter()).update(refs)

    def apply_claim(self, event: str, pvc: Obj) -> None:
        md = pvc.get("metadata") or {}
        key = (md.get("namespace") or "", md.get("name") or "")
        volume = (pvc.get("spec") or {}).get("volumeName") or ""
        if event == "DELETED" or not volume:
            self.claims.pop(key, None)
        else:
            self.claims[key] = volume

    def reaches(self, node: str, resource: str, namespace: str, name: str) -> bool:
        refs = self.refs.get(node)
        if not refs:
            return False
        if resource == "persistentvolumes":
            return any(r[0] == "persistentvolumeclaims" and self.claims.get((r[1], r[2])) == name for r in refs)
        return refs.get((resource, namespace, name), 0) > 0

    # -- feeding from the store ----------------------------------------------------------

    async def start(self, service: Any) -> None:
        for info, apply, reset in ((PODS, self.apply_pod, self._reset_pods),
                                   (PERSISTENTVOLUMECLAIMS, self.apply_claim, self.claims.clear)):
            self._tasks.append(await mirror(service, info, apply, reset, f"node-graph-{info.plural}"))

    def _reset_pods(self) -> None:
        self.pods.clear()
        self.refs.clear()

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)


_GRAPH_READS = {"secrets": ("get", "list", "watch"), "configmaps": ("get", "list", "watch"),
                "persistentvolumeclaims": ("get",), "persistentvolumes": ("get",)}


class NodeAuthorizer:
    """No opinion for anyone but nodes; for a node, the graph, its lease, then the node rules."""

    RECHECK_HOLD = 2.0  # seconds a refused re-check is not repeated for the same request

    def __init__(self, graph: NodeGraph, service: Any = None) -> None:
        self.graph = graph
        self.service = service  # for ``recheck`` against the store
        self._refused: dict[tuple[str, Attributes], float] = {}

    def authorize(self, user: UserInfo, a: Attributes) -> Decision:
        node = node_name_of(user)
        if node is None:
            return False, ""
        if a.resource_request and a.api_group == "":
            if a.resource in _GRAPH_READS and not a.subresource:
                return self._graph(node, a)
            if a.resource in ("secrets", "configmaps"):
                return False, "cannot read subresource"
            if a.resource == "serviceaccounts":
                if a.verb != "create" or not a.name:
                    return False, "can only create tokens for individual service accounts"
                if a.subresource != "token":
                    return False, "can only create token subresource of serviceaccount"
                return self._reach(node, a)
        if a.resource_request and a.api_group == "coordination.k8s.io" and a.resource == "leases":
            return self._lease(node, a)
        if any(rule.allows(a) for rule in NODE_RULES):
            return True, ""
        return False, ""

    def _graph(self, node: str, a: Attributes) -> Decision:
        allowed_verbs = _GRAPH_READS[a.resource]
        if a.verb not in allowed_verbs:
            # the PV rules of jobplane's local-path cleanup
            if a.resource == "persistentvolumes" and any(rule.allows(a) for rule in NODE_RULES):
                return True, ""
            return False, ("can only get individual resources of this type" if allowed_verbs == ("get",)
                           else "can only read resources of this type")
        if a.resource in ("secrets", "configmaps") and not a.namespace:
            return False, "can only read namespaced object of this type"
        if a.resource == "persistentvolumes" and a.verb in ("list", "watch"):
            return True, ""  # jobplane: see NODE_RULES
        return self._reach(node, a)

    def _reach(self, node: str, a: Attributes) -> Decision:
        if not a.name:
            return False, "No Object name found"
        if self.graph.reaches(node, a.resource, a.namespace, a.name):
            return True, ""
        return False, NO_PATH.format(node)

    def _lease(self, node: str, a: Attributes) -> Decision:
        if a.verb not in ("get", "create", "update", "patch", "delete"):
            return False, "can only get, create, update, patch, or delete a node lease"
        if a.namespace != NODE_LEASE_NAMESPACE:
            return False, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        if a.verb != "create" and a.name != node:
            return False, "can only access node lease with the same name as the requesting node"
        return True, ""

    async def recheck(self, user: UserInfo, a: Attributes) -> bool:
        """After a graph miss: ask the store whether a pod bound to the node uses the object
        (the index may not have seen a pod bound a moment ago)."""
        node = node_name_of(user)
        if node is None or self.service is None or not a.name or a.resource not in (
                "secrets", "configmaps", "persistentvolumeclaims", "persistentvolumes", "serviceaccounts"):
            return False
        if self.authorize(user, a)[1] != NO_PATH.format(node):
            return False  # refused for another reason than a missing edge
        # a node asking again and again for what it may not read costs one store read per
        # request and object every RECHECK_HOLD seconds, not one per request
        now = self.service.clock.now()
        if now < self._refused.get((node, a), 0.0):
            return False
        if len(self._refused) > 10_000:
            self._refused = {k: t for k, t in self._refused.items() if t > now}
        found = await self._recheck(node, a)
        if not found:
            self._refused[(node, a)] = now + self.RECHECK_HOLD
        return found

    async def _recheck(self, node: str, a: Attributes) -> bool:
        """The answer from the store itself (the graph is left to its watch: a pod read here
        and deleted a moment later must not leave an edge behind)."""
        namespace = a.namespace or None
        listed = await self.service.list(PODS, namespace, field_selector=f"spec.nodeName={node}")
        refs: set[Ref] = set()
        for pod in listed["items"]:
            if _pod_node(pod) == node:
                refs |= pod_references(pod)
        if a.resource != "persistentvolumes":
            return (a.resource, a.namespace, a.name) in refs
        for kind, ns, claim in refs:
            if kind == "persistentvolumeclaims":
                try:
                    pvc = await self.service.get(PERSISTENTVOLUMECLAIMS, ns, claim)
                except errors.StatusError:
                    continue
                if (pvc.get("spec") or {}).get("volumeName") == a.name:
                    return True
        return False


# ---------------------------------------------------------------- NodeRestriction


def _forbidden(info: ResourceInfo, name: str, message: str) -> errors.StatusError:
    qualified = f"{info.plural}.{info.group}" if info.group else info.plural
    details: Obj = {"name": name, "kind": info.plural}
    if info.group:
        details["group"] = info.group
    return errors.StatusError(403, "Forbidden", f'{qualified} "{name}" is forbidden: {message}', details)


# labels a node may set on itself (upstream's kubeletapis.KubeletLabels and namespaces)
_KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone"})


def _in_domain(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def restricted_node_label(key: str) -> bool:
    """Whether NodeRestriction keeps a node from setting ``key`` on itself: anything under
    ``node-restriction.kubernetes.io``, and the kubernetes.io / k8s.io labels other than the
    kubelet's own set and the ``kubelet.kubernetes.io`` / ``node.kubernetes.io`` namespaces."""
    domain = key.split("/", 1)[0] if "/" in key else ""
    if _in_domain(domain, "node-restriction.kubernetes.io"):
        return True
    if key in _KUBELET_LABELS or _in_domain(domain, "kubelet.kubernetes.io") or \
            _in_domain(domain, "node.kubernetes.io"):
        return False
    return _in_domain(domain, "kubernetes.io") or _in_domain(domain, "k8s.io")


def _labels(obj: Obj | None) -> dict[str, Any]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def _name(obj: Obj | None) -> str:
    return ((obj or {}).get("metadata") or {}).get("name") or ""


class NodeRestriction:
    """The admission half: judged on the objects themselves, for node users only."""

    async def admit(self, op: str, info: ResourceInfo, new: Obj | None, old: Obj | None,
                    subresource: str | None = None) -> None:
        node = node_name_of(current_user.get())
        if node is None:
            return
        for message in self._violations(node, op, info, new, old, subresource):
            raise _forbidden(info, _name(new) or _name(old), message)

    def _violations(self, node: str, op: str, info: ResourceInfo, new: Obj | None, old: Obj | None,
                    subresource: str | None) -> Iterator[str]:
        if info is NODES:
            target = _name(new) if op == "CREATE" else _name(old)
            if target != node:
                verb = {"CREATE": "create", "DELETE": "delete"}.get(op, "modify")
                yield f'node "{node}" is not allowed to {verb} node "{target}"'
                return
            if op == "CREATE":
                bad = sorted(k for k in _labels(new) if restricted_node_label(k))
                if bad:
                    yield f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}'
            elif op == "UPDATE":
                before, after = _labels(old), _labels(new)
                bad = sorted(k for k in before.keys() | after.keys()
                             if before.get(k) != after.get(k) and restricted_node_label(k))
                if bad:
                    yield f'node "{node}" is not allowed to modify labels: {", ".join(bad)}'
                if ((old or {}).get("spec") or {}).get("taints") != ((new or {}).get("spec") or {}).get("taints"):
                    yield f'node "{node}" is not allowed to modify taints'
        elif info is PODS:
            if op == "CREATE" and subresource == "eviction":
                if _pod_node(old or {}) != node:
                    yield f'node "{node}" can only evict pods with spec.nodeName set to itself'
            elif op == "CREATE":
                yield f'pod does not have "kubernetes.io/config.mirror" annotation, node "{node}" can only ' \
                      "create mirror pods"
            elif op == "DELETE":
                if _pod_node(old or {}) != node:
                    yield f'node "{node}" can only delete pods with spec.nodeName set to itself'
            elif subresource == "status":
                if _pod_node(old or {}) != node:
                    yield f'node "{node}" can only update pod status for pods with spec.nodeName set to itself'
            else:
                yield f'node "{node}" is not allowed to modify pods'
        elif info is LEASES:
            md = (new or old or {}).get("metadata") or {}
            if md.get("namespace") == NODE_LEASE_NAMESPACE and _name(new or old) != node:
                yield "can only access node lease with the same name as the requesting node"
        elif info is PERSISTENTVOLUMES and op != "CREATE":
            owner = (((old or {}).get("metadata") or {}).get("annotations") or {}).get(PV_NODE_ANNOTATION)
            kept = (((new or {}).get("metadata") or {}).get("annotations") or {}).get(PV_NODE_ANNOTATION)
            if owner != node or (new is not None and kept != owner):
                yield f'node "{node}" can only modify persistent volumes it provisioned'


def check_token_binding(user: UserInfo | None, account: str, bound: Obj | None, target: Obj | None) -> None:
    """NodeRestriction on ``serviceaccounts/token``: a node asks only for tokens bound to a
    pod that is bound to it (upstream's ``admitServiceAccount``)."""
    from jobplane.api.registry import SERVICEACCOUNTS

    node = node_name_of(user)
    if node is None:
        return
    if not bound:
        raise _forbidden(SERVICEACCOUNTS, account, f'node "{node}" requested token not bound to a pod')
    if bound.get("kind") != "Pod":
        raise _forbidden(SERVICEACCOUNTS, account, f'node "{node}" requested token bound to a {bound.get("kind")}')
    if target is None or _pod_node(target) != node:
        raise _forbidden(SERVICEACCOUNTS, account, f'node "{node}" requested token bound to a pod scheduled on a '
                                              "different node")
