"""The container, volume and pod-template sections of ``kubectl describe`` (describe.go
describeContainers, describeVolumes, DescribePodTemplate).

Why a module of its own: Pods show them with live container statuses, Jobs and CronJobs
show them for their pod template; one implementation serves all three.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jobplane.api.netaddr import join_host_port
from jobplane.cli.describe.common import (
    PrefixWriter,
    annotations_multiline,
    go_bool,
    labels_multiline,
    print_bool,
    rfc1123z,
    tolerations_multiline,
)

Obj = dict[str, Any]
GO_ZERO_TIME = "Mon, 01 Jan 0001 00:00:00 +0000"  # time.Time{}.Format(time.RFC1123Z)


def _ports(ports: list[Obj] | None, key: str) -> str:
    return ", ".join(f"{p.get(key, 0)}/{p.get('protocol') or 'TCP'}" for p in ports or ())


def _resolve_env(pod: Obj | None, field_path: str) -> str:
    if pod is None:
        return ""
    meta = pod.get("metadata") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", field_path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName"),
        "status.hostIP": (pod.get("status") or {}).get("hostIP"),
        "status.podIP": (pod.get("status") or {}).get("podIP"),
    }
    return simple.get(field_path) or ""


def _describe_state(w: PrefixWriter, name: str, state: Obj) -> None:
    if state.get("running") is not None:
        w.write(2, f"{name}:\tRunning\n")
        w.write(3, f"Started:\t{rfc1123z(state['running'].get('startedAt'))}\n")
    elif state.get("waiting") is not None:
        w.write(2, f"{name}:\tWaiting\n")
        if state["waiting"].get("reason"):
            w.write(3, f"Reason:\t{state['waiting']['reason']}\n")
    elif state.get("terminated") is not None:
        t = state["terminated"]
        w.write(2, f"{name}:\tTerminated\n")
        if t.get("reason"):
            w.write(3, f"Reason:\t{t['reason']}\n")
        if t.get("message"):
            w.write(3, f"Message:\t{t['message']}\n")
        w.write(3, f"Exit Code:\t{t.get('exitCode') or 0}\n")
        if (t.get("signal") or 0) > 0:
            w.write(3, f"Signal:\t{t['signal']}\n")
        # kubectl formats a zero time (a container kubelet could not locate has none)
        w.write(3, f"Started:\t{rfc1123z(t.get('startedAt')) or GO_ZERO_TIME}\n")
        w.write(3, f"Finished:\t{rfc1123z(t.get('finishedAt')) or GO_ZERO_TIME}\n")
    else:
        w.write(2, f"{name}:\tWaiting\n")


def describe_probe(probe: Obj) -> str:
    """kubectl's DescribeProbe: the handler, then delay, timeout, period and thresholds."""
    attrs = (f"delay={probe.get('initialDelaySeconds') or 0}s timeout={probe.get('timeoutSeconds') or 0}s "
             f"period={probe.get('periodSeconds') or 0}s #success={probe.get('successThreshold') or 0} "
             f"#failure={probe.get('failureThreshold') or 0}")
    if probe.get("exec") is not None:
        return f"exec [{' '.join(str(a) for a in probe['exec'].get('command') or ())}] {attrs}"
    if probe.get("httpGet") is not None:
        h = probe["httpGet"]
        port = str(h.get("port", ""))
        host = str(h.get("host") or "")
        hostport = join_host_port(host, port) if port else host
        return f"http-get {str(h.get('scheme') or '').lower()}://{hostport}{h.get('path') or ''} {attrs}"
    if probe.get("tcpSocket") is not None:
        t = probe["tcpSocket"]
        return f"tcp-socket {t.get('host') or ''}:{t.get('port', '')} {attrs}"
    if probe.get("grpc") is not None:
        g = probe["grpc"]
        return f"grpc <pod>:{g.get('port')} {g.get('service') or ''} {attrs}"
    return f"unknown {attrs}"


def describe_containers(w: PrefixWriter, label: str, containers: list[Obj] | None,
                        statuses: list[Obj] | None, space: str, pod: Obj | None = None) -> None:
    containers = containers or []
    by_name = {s.get("name"): s for s in statuses or ()}
    w.write(0, f"{space}{label}:{'' if containers else ' <none>'}\n")
    name_indent = " " if space else ""
    for c in containers:
        status = by_name.get(c.get("name"))
        w.write(1, f"{name_indent}{c.get('name', '')}:\n")
        if status is not None:
            w.write(2, f"Container ID:\t{status.get('containerID', '')}\n")
        w.write(2, f"Image:\t{c.get('image', '')}\n")
        if status is not None:
            w.write(2, f"Image ID:\t{status.get('imageID', '')}\n")
        ports = _ports(c.get("ports"), "containerPort")
        w.write(2, f"Ports:\t{ports}\n" if "," in ports else f"Port:\t{ports or '<none>'}\n")
        host_ports = _ports(c.get("ports"), "hostPort")
        w.write(2, f"Host Ports:\t{host_ports}\n" if "," in host_ports
                else f"Host Port:\t{host_ports or '<none>'}\n")
        if c.get("restartPolicy"):
            w.write(2, f"Restart Policy:\t{c['restartPolicy']}\n")
        for key, title in (("command", "Command"), ("args", "Args")):
            if c.get(key):
                w.write(2, f"{title}:\n")
                for part in c[key]:
                    for s in str(part).split("\n"):
                        w.write(3, s + "\n")
        if status is not None:
            _describe_state(w, "State", status.get("state") or {})
            last = status.get("lastState") or {}
            if last.get("terminated") is not None:
                _describe_state(w, "Last State", last)
            w.write(2, f"Ready:\t{print_bool(status.get('ready'))}\n")
            w.write(2, f"Restart Count:\t{status.get('restartCount') or 0}\n")
        resources = c.get("resources") or {}
        for key, title in (("limits", "Limits"), ("requests", "Requests")):
            if resources.get(key):
                w.write(2, f"{title}:\n")
                for rname in sorted(resources[key]):
                    w.write(3, f"{rname}:\t{resources[key][rname]}\n")
        for key, title in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"), ("startupProbe", "Startup")):
            if c.get(key) is not None:
                w.write(2, f"{title}:\t{describe_probe(c[key])}\n")
        env = c.get("env") or []
        w.write(2, "Environment:" + ("" if env else "\t<none>") + "\n")
        for e in env:
            vf = e.get("valueFrom")
            if vf is None:
                for i, s in enumerate(str(e.get("value", "")).split("\n")):
                    w.write(3, f"{e.get('name')}:\t{s}\n" if i == 0 else f"\t{s}\n")
            elif vf.get("fieldRef"):
                fr = vf["fieldRef"]
                value = _resolve_env(pod, fr.get("fieldPath", ""))
                w.write(3, f"{e.get('name')}:\t{value} ({fr.get('apiVersion', '')}:{fr.get('fieldPath', '')})\n")
            elif vf.get("secretKeyRef"):
                r = vf["secretKeyRef"]
                w.write(3, f"{e.get('name')}:\t<set to the key '{r.get('key')}' in secret '{r.get('name')}'>"
                           f"\tOptional: {go_bool(r.get('optional'))}\n")
            elif vf.get("configMapKeyRef"):
                r = vf["configMapKeyRef"]
                w.write(3, f"{e.get('name')}:\t<set to the key '{r.get('key')}' of config map "
                           f"'{r.get('name')}'>\tOptional: {go_bool(r.get('optional'))}\n")
        mounts = sorted(c.get("volumeMounts") or [], key=lambda m: m.get("mountPath", ""))
        w.write(2, "Mounts:" + ("" if mounts else "\t<none>") + "\n")
        for m in mounts:
            flags = ["ro" if m.get("readOnly") else "rw"]
            if m.get("subPath"):
                flags.append(f'path="{m["subPath"]}"')
            w.write(3, f"{m.get('mountPath')} from {m.get('name')} ({','.join(flags)})\n")


def describe_volumes(w: PrefixWriter, volumes: list[Obj] | None, space: str) -> None:
    if not volumes:
        w.write(0, f"{space}Volumes:\t<none>\n")
        return
    w.write(0, f"{space}Volumes:\n")
    name_indent = " " if space else ""
    for v in volumes:
        w.write(1, f"{name_indent}{v.get('name')}:\n")
        kind = next((k for k in _VOLUME_SOURCES if v.get(k) is not None), None)
        if v.get("projected") is not None:
            _describe_projected(w, v["projected"])
        elif kind is not None:
            title, fields = _VOLUME_SOURCES[kind]
            src = v[kind]
            w.write(2, f"Type:\t{title}\n" + "".join(f"    {label}:\t{text(src)}\n" for label, text in fields))
        else:
            w.write(1, "<unknown>\n")


def _optional(source: Obj) -> str:
    """A ``*bool`` printed with %v: ``<nil>`` when unset (kubectl would print the pointer)."""
    return "<nil>" if source.get("optional") is None else go_bool(source["optional"])


def _describe_projected(w: PrefixWriter, projected: Obj) -> None:
    """kubectl's printProjectedVolumeSource: one or two lines per source."""
    w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
    for source in projected.get("sources") or ():
        if source.get("secret") is not None:
            w.write(2, f"SecretName:\t{source['secret'].get('name', '')}\n"
                       f"    SecretOptionalName:\t{_optional(source['secret'])}\n")
        elif source.get("downwardAPI") is not None:
            w.write(2, "DownwardAPI:\ttrue\n")
        elif source.get("configMap") is not None:
            w.write(2, f"ConfigMapName:\t{source['configMap'].get('name', '')}\n"
                       f"    ConfigMapOptional:\t{_optional(source['configMap'])}\n")
        elif source.get("serviceAccountToken") is not None:
            w.write(2, f"TokenExpirationSeconds:\t{source['serviceAccountToken'].get('expirationSeconds', 3600)}\n")


# kubectl's print<Kind>VolumeSource: the Type line, then each field's label and text.
_VOLUME_SOURCES: dict[str, tuple[str, tuple[tuple[str, Callable[[Obj], str]], ...]]] = {
    "hostPath": ("HostPath (bare host directory volume)", (
        ("Path", lambda s: s.get("path", "")),
        ("HostPathType", lambda s: "<none>" if s.get("type") is None else s["type"]))),
    "emptyDir": ("EmptyDir (a temporary directory that shares a pod's lifetime)", (
        ("Medium", lambda s: s.get("medium", "")),
        ("SizeLimit", lambda s: s.get("sizeLimit") or "<unset>"))),
    "configMap": ("ConfigMap (a volume populated by a ConfigMap)", (
        ("Name", lambda s: s.get("name", "")),
        ("Optional", lambda s: go_bool(s.get("optional"))))),
    "secret": ("Secret (a volume populated by a Secret)", (
        ("SecretName", lambda s: s.get("secretName", "")),
        ("Optional", lambda s: go_bool(s.get("optional"))))),
}


def describe_pod_template(w: PrefixWriter, template: Obj | None) -> None:
    w.write(0, "Pod Template:\n")
    if template is None:
        w.write(1, "<unset>")
        return
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    labels_multiline(w, "  Labels", meta.get("labels"))
    if meta.get("annotations"):
        annotations_multiline(w, "  Annotations", meta["annotations"])
    if spec.get("serviceAccountName"):
        w.write(1, f"Service Account:\t{spec['serviceAccountName']}\n")
    if spec.get("initContainers"):
        describe_containers(w, "Init Containers", spec["initContainers"], None, "  ")
    describe_containers(w, "Containers", spec.get("containers"), None, "  ")
    describe_volumes(w, spec.get("volumes"), "  ")
    if spec.get("priorityClassName"):
        w.write(1, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    labels_multiline(w, "  Node-Selectors", spec.get("nodeSelector"))
    tolerations_multiline(w, "  Tolerations", spec.get("tolerations"))
