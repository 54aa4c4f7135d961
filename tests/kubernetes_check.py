#!/usr/bin/env python3
"""Offline checks of deploy/kubernetes (no cluster):
- the manifests are what deploy/kubernetes/generate.py makes from their sources (no drift);
- every built-in kind validates strictly (unknown fields rejected) against the Kubernetes OpenAPI
  schemas shipped by kubernetes-validate (PyPI), for the oldest and newest supported versions;
- PodMonitor and PrometheusRule (CRDs) validate against structural schemas of the fields we use, and
  the PrometheusRule's groups pass `promtool check rules` and equal alert-rules/tripline.rules.yml;
- the ConfigMap's configuration and policy pass `tripline check-config` / `tripline policy check`;
- the DaemonSet keeps its minimal privileges: not privileged, every capability dropped but the
  systemd unit's CapabilityBoundingSet, hostPID, read-only root, read-only host mounts but the state.
Usage: tests/kubernetes_check.py [path/to/tripline]
"""
import pathlib
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy/kubernetes"
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
errors = []


def err(msg):
    errors.append(msg)
    print("FAIL:", msg)


# Structural schemas of the monitoring.coreos.com/v1 fields we use (the operator's CRDs require these).
STR = {"type": "string", "minLength": 1}
METADATA = {"type": "object", "required": ["name", "namespace"],
            "properties": {"name": STR, "namespace": STR, "labels": {"type": "object"}}}
CRD_SCHEMAS = {
    "PodMonitor": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PodMonitor"},
            "metadata": METADATA,
            "spec": {"type": "object", "required": ["selector", "podMetricsEndpoints"],
                     "additionalProperties": False,
                     "properties": {
                         "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                         "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": {
                             "type": "object", "required": ["port"], "additionalProperties": False,
                             "properties": {"port": STR, "path": STR, "interval": {"pattern": "^[0-9]+(ms|s|m|h)$"},
                                            "relabelings": {"type": "array", "items": {
                                                "type": "object", "additionalProperties": False,
                                                "properties": {"sourceLabels": {"type": "array"},
                                                               "targetLabel": STR,
                                                               "action": {"enum": ["replace", "keep", "drop", "labelmap"]}}}}}}}}},
        },
    },
    "PrometheusRule": {
        "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
            "metadata": METADATA,
            "spec": {"type": "object", "required": ["groups"], "additionalProperties": False,
                     "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "required": ["name", "rules"], "additionalProperties": False,
                         "properties": {"name": STR, "interval": STR, "rules": {"type": "array", "items": {
                             "type": "object", "required": ["expr"], "additionalProperties": False,
                             "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                             "properties": {"alert": STR, "record": STR, "expr": STR, "for": STR,
                                            "keep_firing_for": STR,
                                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                            "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}}}},
        },
    },
}


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/debug/tripline")
    gen = subprocess.run([sys.executable, str(K8S / "generate.py"), "--check"], capture_output=True, text=True)
    if gen.returncode != 0:
        err(gen.stdout.strip() or gen.stderr.strip())

    docs = []
    for f in sorted(K8S.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                docs.append((f.name, d))
    kinds = {d["kind"]: d for _, d in docs}
    for want in ["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "PodMonitor", "PrometheusRule"]:
        if want not in kinds:
            err(f"no {want} in deploy/kubernetes")

    for name, d in docs:
        kind = d["kind"]
        if kind in CRD_SCHEMAS:
            try:
                jsonschema.validate(d, CRD_SCHEMAS[kind])
            except jsonschema.ValidationError as e:
                err(f"{name}: {kind}: {e.message} at {'/'.join(map(str, e.absolute_path))}")
            continue
        for v in VERSIONS:
            try:
                kubernetes_validate.validate(d, v, strict=True)
            except kubernetes_validate.ValidationError as e:
                err(f"{name}: {kind} (Kubernetes {v}): {e.message} at {'/'.join(map(str, e.path))}")
            except Exception as e:  # schema missing or invalid
                err(f"{name}: {kind} (Kubernetes {v}): {e}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        rules = kinds["PrometheusRule"]["spec"]
        shipped = yaml.safe_load((ROOT / "alert-rules/tripline.rules.yml").read_text())
        if rules != shipped:
            err("PrometheusRule spec differs from alert-rules/tripline.rules.yml")
        (tmp / "rules.yml").write_text(yaml.safe_dump(rules))
        r = subprocess.run(["promtool", "check", "rules", str(tmp / "rules.yml")], capture_output=True, text=True)
        if r.returncode != 0:
            err("promtool check rules (PrometheusRule): " + r.stdout + r.stderr)
        data = kinds["ConfigMap"]["data"]
        (tmp / "tripline.yml").write_text(data["tripline.yml"])
        (tmp / "policy.yml").write_text(data["policy.yml"])
        for args in (["check-config", "--offline", f"--config.file={tmp / 'tripline.yml'}"],
                     ["policy", "check", str(tmp / "policy.yml")]):
            r = subprocess.run([binary, *args], capture_output=True, text=True)
            if r.returncode != 0:
                err(f"tripline {' '.join(args)}: {r.stderr.strip()}")

    ds = kinds["DaemonSet"]["spec"]["template"]["spec"]
    c = ds["containers"][0]
    sc = c["securityContext"]
    unit = (ROOT / "packaging/tripline.service").read_text()
    unit_caps = sorted(line.split("=", 1)[1].replace("CAP_", "").split()
                       for line in unit.splitlines() if line.startswith("CapabilityBoundingSet="))[0]
    if sorted(sc["capabilities"]["add"]) != sorted(unit_caps):
        err(f"DaemonSet capabilities {sc['capabilities']['add']} differ from the unit's {unit_caps}")
    if sc["capabilities"].get("drop") != ["ALL"]:
        err("DaemonSet must drop ALL capabilities")
    if sc.get("privileged") or sc.get("allowPrivilegeEscalation") or not sc.get("readOnlyRootFilesystem"):
        err("DaemonSet container must be unprivileged, without privilege escalation, read-only root")
    if not ds.get("hostPID") or ds.get("hostNetwork"):
        err("DaemonSet must use hostPID and not hostNetwork")
    for m in c["volumeMounts"]:
        if m["name"] != "state" and not m.get("readOnly"):
            err(f"mount {m['name']} must be read-only")
    paths = {v["hostPath"]["path"] for v in ds["volumes"] if "hostPath" in v}
    for p in ["/proc", "/sys/kernel/btf", "/sys/kernel/tracing", "/var/lib/tripline"]:
        if p not in paths:
            err(f"DaemonSet lacks the host mount {p}")

    if errors:
        print(f"kubernetes manifests: {len(errors)} problem(s)")
        return 1
    print(f"kubernetes manifests: OK ({len(docs)} objects; Kubernetes {', '.join(VERSIONS)} strict; "
          "CRDs structural; rules pass promtool; config and policy pass tripline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
