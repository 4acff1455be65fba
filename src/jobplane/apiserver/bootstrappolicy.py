"""Upstream's default roles and bindings (``plugin/pkg/auth/authorizer/rbac/bootstrappolicy``),
limited to what a batch control plane serves, reconciled at every start as kube-apiserver's
``rbac/bootstrap-roles`` post-start hook does: missing objects are created, and objects
annotated ``rbac.authorization.kubernetes.io/autoupdate: "true"`` get back any rule or
subject they lost (extra ones a person added are kept)."""

from __future__ import annotations

import logging
from typing import Any

from jobplane.api import errors
from jobplane.api.rbac import aggregate_all
from jobplane.api.registry import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES, ResourceInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
READ_WRITE = READ + WRITE
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AGG = "rbac.authorization.k8s.io/aggregate-to-"


def rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> Obj:
    out: Obj = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}
    if names:
        out["resourceNames"] = names
    return out


def url_rule(verbs: list[str], urls: list[str]) -> Obj:
    return {"verbs": list(verbs), "nonResourceURLs": list(urls)}


def events_rules() -> list[Obj]:
    """``eventsRule()``: create/update/patch events in both event groups."""
    return [rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"])]


def _role(name: str, rules: list[Obj], labels: dict[str, str] | None = None,
          aggregate_from: str | None = None) -> Obj:
    md: Obj = {"name": name, "labels": {**BOOTSTRAP_LABEL, **(labels or {})},
               "annotations": {AUTOUPDATE: "true"}}
    out: Obj = {"metadata": md, "rules": rules}
    if aggregate_from:
        out["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGG + aggregate_from: "true"}}]}
    return out


def _controller_role(name: str, rules: list[Obj]) -> Obj:
    return _role("system:controller:" + name, rules + events_rules())


DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
                  "/readyz", "/version", "/version/"]
PUBLIC_INFO_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
ISSUER_DISCOVERY_URLS = ["/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                         "/openid/v1/jwks", "/openid/v1/jwks/"]

# The controllers jobplane runs, each with upstream's least-privilege role.
CONTROLLER_ROLES: dict[str, list[Obj]] = {
    "job-controller": [
        rule(["get", "list", "watch", "update", "patch"], ["batch"], ["jobs"]),
        rule(["update", "patch"], ["batch"], ["jobs/status"]),
        rule(["update", "patch"], ["batch"], ["jobs/finalizers"]),
        rule(["list", "watch", "create", "delete", "patch"], [""], ["pods"]),
    ],
    "cronjob-controller": [
        rule(["get", "list", "watch", "update"], ["batch"], ["cronjobs"]),
        rule(["get", "list", "watch", "create", "update", "delete", "patch"], ["batch"], ["jobs"]),
        rule(["update"], ["batch"], ["cronjobs/status"]),
        rule(["update"], ["batch"], ["cronjobs/finalizers"]),
        rule(["list", "delete"], [""], ["pods"]),
    ],
    "ttl-after-finished-controller": [
        rule(["get", "list", "watch", "delete"], ["batch"], ["jobs"]),
    ],
    "generic-garbage-collector": [
        rule(["get", "list", "watch", "patch", "update", "delete"], ["*"], ["*"]),
    ],
    "namespace-controller": [
        rule(["get", "list", "watch", "delete"], [""], ["namespaces"]),
        rule(["update"], [""], ["namespaces/finalize", "namespaces/status"]),
        rule(["get", "list", "delete", "deletecollection"], ["*"], ["*"]),
    ],
    "node-controller": [
        rule(["get", "list", "update", "delete", "patch"], [""], ["nodes"]),
        rule(["patch", "update"], [""], ["nodes/status"]),
        rule(["patch", "update"], [""], ["pods/status"]),
        rule(["list", "delete"], [""], ["pods"]),
    ],
    "pod-garbage-collector": [
        rule(["list", "watch", "delete"], [""], ["pods"]),
        rule(["get", "list"], [""], ["nodes"]),
        rule(["patch"], [""], ["pods/status"]),
    ],
    "certificate-controller": [
        rule(["get", "list", "watch", "delete"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
        rule(["update"], ["certificates.k8s.io"], ["certificatesigningrequests/approval",
                                                   "certificatesigningrequests/status"]),
        rule(["approve"], ["certificates.k8s.io"], ["signers"], ["kubernetes.io/kube-apiserver-client-kubelet"]),
        rule(["sign"], ["certificates.k8s.io"], ["signers"], ["kubernetes.io/kube-apiserver-client",
                                                              "kubernetes.io/kube-apiserver-client-kubelet"]),
        rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
    ],
    "service-account-controller": [
        rule(["create"], [""], ["serviceaccounts"]),
    ],
    "root-ca-cert-publisher": [
        rule(["create", "update"], [""], ["configmaps"]),
    ],
    "endpointslice-controller": [
        rule(["get", "list", "watch"], [""], ["services", "pods", "nodes"]),
        rule(["update"], [""], ["services/finalizers"]),
        rule(["get", "list", "create", "update", "delete"], ["discovery.k8s.io"], ["endpointslices"]),
    ],
    # jobplane's own controllers (no upstream counterpart in kube-controller-manager)
    "event-ttl-controller": [  # etcd's event TTL, as a controller
        rule(["list", "watch", "delete"], [""], ["events"]),
    ],
    "local-path-provisioner": [  # the control-plane half of the local-path StorageClass
        rule(["get", "list", "watch", "update", "patch"], [""], ["persistentvolumeclaims"]),
        rule(["get", "list", "watch", "create", "update", "patch", "delete"], [""], ["persistentvolumes"]),
        rule(["update", "patch"], [""], ["persistentvolumes/status", "persistentvolumeclaims/status"]),
        rule(["get", "list", "watch"], ["storage.k8s.io"], ["storageclasses"]),
        rule(["get", "list", "watch"], [""], ["nodes", "pods"]),
    ],
    "state-metrics": [  # kube-state-metrics' reads for the Job and CronJob metrics
        rule(["list", "watch"], ["batch"], ["jobs", "cronjobs"]),
    ],
    "clusterrole-aggregation-controller": [
        rule(["escalate", "get", "list", "watch", "update", "patch"], [GROUP], ["clusterroles"]),
    ],
}


def cluster_roles() -> list[Obj]:
    roles = [
        _role("cluster-admin", [rule(["*"], ["*"], ["*"]), url_rule(["*"], ["*"])]),
        _role("system:discovery", [url_rule(["get"], DISCOVERY_URLS)]),
        _role("system:monitoring", [url_rule(["get"], ["/healthz", "/healthz/*", "/livez", "/livez/*",
                                                       "/metrics", "/metrics/slis", "/readyz", "/readyz/*"])]),
        _role("system:basic-user", [
            rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
            rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
        ]),
        _role("system:public-info-viewer", [url_rule(["get"], PUBLIC_INFO_URLS)]),
        _role("system:service-account-issuer-discovery", [url_rule(["get"], ISSUER_DISCOVERY_URLS)]),
        _role("admin", [], aggregate_from="admin"),
        _role("edit", [], {AGG + "admin": "true"}, aggregate_from="edit"),
        _role("view", [], {AGG + "edit": "true"}, aggregate_from="view"),
        _role("system:aggregate-to-admin", [
            rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
            rule(READ_WRITE, [GROUP], ["rolebindings", "roles"]),
        ], {AGG + "admin": "true"}),
        _role("system:aggregate-to-edit", [
            rule(READ, [""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                              "services/proxy"]),
            rule(["impersonate"], [""], ["serviceaccounts"]),
            rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
            rule(["create"], [""], ["pods/eviction"]),
            rule(WRITE, [""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                               "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                               "services/proxy"]),
            rule(["create"], [""], ["serviceaccounts/token"]),
            rule(WRITE, ["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                                   "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"]),
            rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
            rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
            rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
            rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
        ], {AGG + "edit": "true"}),
        _role("system:aggregate-to-view", [
            rule(READ, [""], ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
                              "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                              "services", "services/status"]),
            rule(READ, [""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                              "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"]),
            rule(READ, [""], ["namespaces"]),
            rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
            rule(READ, ["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                                  "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                                  "replicasets/status", "statefulsets", "statefulsets/scale",
                                  "statefulsets/status"]),
            rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
            rule(READ, ["events.k8s.io"], ["events"]),
            rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        ], {AGG + "view": "true"}),
        _role("system:node", [
            rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews", "subjectaccessreviews"]),
            rule(READ, [""], ["services"]),
            rule(["create", "get", "list", "watch"], [""], ["nodes"]),
            rule(["patch", "update"], [""], ["nodes/status"]),
            rule(["patch", "update"], [""], ["nodes"]),
            rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
            rule(READ, [""], ["pods"]),
            rule(["create", "delete"], [""], ["pods"]),
            rule(["patch", "update"], [""], ["pods/status"]),
            rule(["create"], [""], ["pods/eviction"]),
            rule(["get"], [""], ["configmaps", "secrets"]),
            rule(["get"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
            rule(["get"], [""], ["endpoints"]),
            rule(["create", "delete", "get", "patch", "update"], ["coordination.k8s.io"], ["leases"]),
            rule(["create"], [""], ["serviceaccounts/token"]),
            rule(READ, ["node.k8s.io"], ["runtimeclasses"]),
        ]),
        _role("system:certificates.k8s.io:certificatesigningrequests:nodeclient", [
            rule(["create"], ["certificates.k8s.io"], ["certificatesigningrequests/nodeclient"]),
        ]),
        _role("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [
            rule(["create"], ["certificates.k8s.io"], ["certificatesigningrequests/selfnodeclient"]),
        ]),
        _role("system:node-bootstrapper", [
            rule(["create", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
        ]),
        _role("system:kube-scheduler", [
            *events_rules(),
            rule(["create"], ["coordination.k8s.io"], ["leases"]),
            rule(["get", "update"], ["coordination.k8s.io"], ["leases"], ["kube-scheduler"]),
            rule(READ, [""], ["nodes"]),
            rule(READ + ["delete"], [""], ["pods"]),
            rule(["create"], [""], ["bindings", "pods/binding"]),
            rule(["patch", "update"], [""], ["pods/status"]),
            rule(READ, [""], ["namespaces", "persistentvolumeclaims", "persistentvolumes", "replicationcontrollers",
                              "services"]),
            rule(READ, ["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"]),
            rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        ]),
        _role("system:kube-controller-manager", [
            *events_rules(),
            rule(["create"], ["coordination.k8s.io"], ["leases"]),
            rule(["get", "update"], ["coordination.k8s.io"], ["leases"], ["kube-controller-manager",
                                                                          "jobplane-controller-manager"]),
            rule(["create"], [""], ["secrets", "serviceaccounts"]),
            rule(["delete"], [""], ["secrets"]),
            rule(["get"], [""], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
            rule(["update"], [""], ["secrets", "serviceaccounts"]),
            rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            rule(["list", "watch"], ["*"], ["*"]),
            rule(["create"], [""], ["serviceaccounts/token"]),
        ]),
    ]
    roles.extend(_controller_role(name, rules) for name, rules in CONTROLLER_ROLES.items())
    return roles


def _binding(name: str, role: str, subjects: list[Obj]) -> Obj:
    return {"metadata": {"name": name, "labels": dict(BOOTSTRAP_LABEL), "annotations": {AUTOUPDATE: "true"}},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role}, "subjects": subjects}


def group(name: str) -> Obj:
    return {"apiGroup": GROUP, "kind": "Group", "name": name}


def user(name: str) -> Obj:
    return {"apiGroup": GROUP, "kind": "User", "name": name}


def service_account(namespace: str, name: str) -> Obj:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def cluster_role_bindings() -> list[Obj]:
    out = [
        _binding("cluster-admin", "cluster-admin", [group("system:masters")]),
        _binding("system:monitoring", "system:monitoring", [group("system:monitoring")]),
        _binding("system:discovery", "system:discovery", [group("system:authenticated")]),
        _binding("system:basic-user", "system:basic-user", [group("system:authenticated")]),
        _binding("system:public-info-viewer", "system:public-info-viewer",
                 [group("system:authenticated"), group("system:unauthenticated")]),
        _binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                 [group("system:serviceaccounts")]),
        _binding("system:kube-controller-manager", "system:kube-controller-manager",
                 [user("system:kube-controller-manager")]),
        _binding("system:kube-scheduler", "system:kube-scheduler", [user("system:kube-scheduler")]),
        _binding("system:node-bootstrapper", "system:node-bootstrapper", [group("system:bootstrappers")]),
        # kubeadm's bindings for node bootstrap tokens and certificate rotation
        _binding("jobplane:node-autoapprove-bootstrap",
                 "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                 [group("system:bootstrappers:jobplane:default-node-token")]),
        _binding("jobplane:node-autoapprove-certificate-rotation",
                 "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", [group("system:nodes")]),
    ]
    out.extend(_binding("system:controller:" + name, "system:controller:" + name,
                        [service_account("kube-system", name)]) for name in CONTROLLER_ROLES)
    return out


def namespaced_roles() -> list[tuple[str, Obj]]:
    """(namespace, Role): the leader-election roles upstream keeps in kube-system, and the
    token cleaner's (bootstrap-token Secrets live there)."""
    return [("kube-system", _role("system:controller:token-cleaner", [
        rule(["delete", "get", "list", "watch"], [""], ["secrets"]), *events_rules()])), ("kube-system", {
        "metadata": {"name": "system::leader-locking-kube-controller-manager", "labels": dict(BOOTSTRAP_LABEL),
                     "annotations": {AUTOUPDATE: "true"}},
        "rules": [rule(["watch"], [""], ["configmaps"]),
                  rule(["get", "update"], [""], ["configmaps"], ["kube-controller-manager"])],
    })]


def namespaced_role_bindings() -> list[tuple[str, Obj]]:
    token_cleaner = {"metadata": {"name": "system:controller:token-cleaner", "labels": dict(BOOTSTRAP_LABEL),
                                  "annotations": {AUTOUPDATE: "true"}},
                     "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "system:controller:token-cleaner"},
                     "subjects": [service_account("kube-system", "token-cleaner")]}
    return [("kube-system", token_cleaner), ("kube-system", {
        "metadata": {"name": "system::leader-locking-kube-controller-manager", "labels": dict(BOOTSTRAP_LABEL),
                     "annotations": {AUTOUPDATE: "true"}},
        "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "system::leader-locking-kube-controller-manager"},
        "subjects": [user("system:kube-controller-manager")],
    })]


def _merge_list(have: list[Any], want: list[Any]) -> list[Any]:
    return list(have) + [x for x in want if x not in have]


async def _reconcile_one(service: Any, info: ResourceInfo, namespace: str | None, want: Obj) -> None:
    name = want["metadata"]["name"]
    try:
        have = await service.get(info, namespace, name)
    except errors.StatusError as exc:
        if exc.code != 404:
            raise
        await service.create(info, namespace, {"apiVersion": info.api_version, "kind": info.kind, **want})
        return
    if ((have.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE) == "false":
        return
    new = dict(have)
    if "rules" in want:
        new["rules"] = _merge_list(have.get("rules") or [], want["rules"])
    if "subjects" in want:
        new["subjects"] = _merge_list(have.get("subjects") or [], want["subjects"])
    if "aggregationRule" in want and not have.get("aggregationRule"):
        new["aggregationRule"] = want["aggregationRule"]
    labels = {**((have.get("metadata") or {}).get("labels") or {}), **(want["metadata"].get("labels") or {})}
    new["metadata"] = {**have["metadata"], "labels": labels}
    if new != have:
        await service.update(info, namespace, name, new)


async def reconcile(service: Any) -> None:
    """Create or repair every default role and binding (idempotent; run at each start)."""
    roles = cluster_roles()
    aggregated = aggregate_all(roles)  # what the aggregation controller fills in
    for role in roles:
        name = role["metadata"]["name"]
        if name in aggregated:
            role = {**role, "rules": aggregated[name]}
        await _reconcile_one(service, CLUSTERROLES, None, role)
    for binding in cluster_role_bindings():
        await _reconcile_one(service, CLUSTERROLEBINDINGS, None, binding)
    for ns, role in namespaced_roles():
        await _reconcile_one(service, ROLES, ns, role)
    for ns, binding in namespaced_role_bindings():
        await _reconcile_one(service, ROLEBINDINGS, ns, binding)
