#!/usr/bin/env python3
"""Generates the Kubernetes manifests in this directory from the files they must not drift from:
the packaged configuration (packaging/tripline.yml), the default policy (exporter/policy/default.yml),
the alert rules (alert-rules/tripline.rules.yml) and the crate version.

    python3 deploy/kubernetes/generate.py           # rewrite the manifests
    python3 deploy/kubernetes/generate.py --check   # exit 1 if a manifest is out of date (CI)
"""
import pathlib
import re
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NS = "tripline"
LABELS = {"app.kubernetes.io/name": "tripline", "app.kubernetes.io/component": "exporter"}
CAPS = ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_RESOURCE"]


def version():
    text = (ROOT / "Cargo.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


class Literal(str):
    """A string dumped as a YAML block scalar (|), so ConfigMaps stay readable."""


yaml.SafeDumper.add_representer(
    Literal, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|"))


def meta(name, **extra):
    m = {"name": name, "namespace": NS, "labels": dict(LABELS)}
    m.update(extra)
    return m


def config_text():
    """The packaged configuration, with the host's procfs as mounted in the pod."""
    text = (ROOT / "packaging/tripline.yml").read_text()
    text = text.replace("installed as /etc/tripline/tripline.yml by the Debian package.",
                        "mounted at /etc/tripline/tripline.yml from this ConfigMap (Kubernetes).")
    text, n = re.subn(r"^  procfs: /proc$", "  procfs: /host/proc", text, flags=re.M)
    assert n == 1, "packaging/tripline.yml: sensor.procfs line not found"
    text = text.replace("systemd creates /var/lib/tripline (StateDirectory=tripline).",
                        "/var/lib/tripline is a hostPath: the model survives pod restarts.")
    return text


def manifests():
    v = version()
    image = f"tripline:{v}"
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": NS, "labels": dict(LABELS)}}
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("tripline"),
          "automountServiceAccountToken": False}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("tripline-config"),
          "data": {"tripline.yml": Literal(config_text()),
                   "policy.yml": Literal((ROOT / "exporter/policy/default.yml").read_text())}}

    def host(name, path, mount, kind="Directory", read_only=True):
        return ({"name": name, "hostPath": {"path": path, "type": kind}},
                {"name": name, "mountPath": mount, "readOnly": read_only})

    mounts = [
        host("proc", "/proc", "/host/proc"),
        host("btf", "/sys/kernel/btf", "/sys/kernel/btf"),
        host("tracefs", "/sys/kernel/tracing", "/sys/kernel/tracing"),
        host("state", "/var/lib/tripline", "/var/lib/tripline", "DirectoryOrCreate", False),
    ]
    volumes = [m[0] for m in mounts] + [
        {"name": "config", "configMap": {"name": "tripline-config"}}]
    volume_mounts = [m[1] for m in mounts] + [
        {"name": "config", "mountPath": "/etc/tripline", "readOnly": True}]
    container = {
        "name": "tripline",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--config.file=/etc/tripline/tripline.yml", "--web.listen-address=:9799",
                 "--log.format=json"],
        "ports": [{"name": "metrics", "containerPort": 9799, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"},
                           "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"},
                          "initialDelaySeconds": 30, "periodSeconds": 30},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"memory": "512Mi"}},
        "securityContext": {
            "privileged": False,
            "runAsUser": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"], "add": list(CAPS)},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": volume_mounts,
    }
    ds = {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("tripline"),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "tripline"}},
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": "tripline",
                    "automountServiceAccountToken": False,
                    "hostPID": True,
                    "hostNetwork": False,
                    "terminationGracePeriodSeconds": 30,
                    "tolerations": [{"operator": "Exists"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
    podmonitor = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": meta("tripline"),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "tripline"}},
            "podMetricsEndpoints": [{
                "port": "metrics", "path": "/metrics", "interval": "30s",
                "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"],
                                 "targetLabel": "node", "action": "replace"}],
            }],
        },
    }
    rules = yaml.safe_load((ROOT / "alert-rules/tripline.rules.yml").read_text())
    prule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
             "metadata": meta("tripline"), "spec": rules}
    return {
        "namespace.yaml": [namespace],
        "rbac.yaml": [sa],
        "configmap.yaml": [cm],
        "daemonset.yaml": [ds],
        "podmonitor.yaml": [podmonitor],
        "prometheusrule.yaml": [prule],
    }


HEADER = ("# Generated by deploy/kubernetes/generate.py from {src}: do not edit; edit the source and "
          "run the generator\n# (tests/kubernetes_check.py fails when this file is out of date).\n")
SOURCES = {
    "configmap.yaml": "packaging/tripline.yml and exporter/policy/default.yml",
    "prometheusrule.yaml": "alert-rules/tripline.rules.yml",
}


def render():
    out = {}
    for name, docs in manifests().items():
        body = "---\n".join(yaml.safe_dump(d, sort_keys=False, width=100) for d in docs)
        out[name] = HEADER.format(src=SOURCES.get(name, "the generator")) + body
    files = list(out)
    out["kustomization.yaml"] = HEADER.format(src="the generator") + yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": files}, sort_keys=False)
    return out


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, text in render().items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("deploy/kubernetes: out of date: " + ", ".join(stale)
              + " (run python3 deploy/kubernetes/generate.py)")
        return 1
    if not check:
        print("deploy/kubernetes: manifests written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
