#!/usr/bin/env python3
"""Validates every dashboards/*.json offline, and optionally against a live Prometheus.

Offline: JSON structure, schemaVersion 41/42, datasource/job/instance variables (multi-value, All = `.+`),
unique panel ids, every panel and target on the ${datasource} variable, every panel with a description
and a unit, no variable inside a textbox value (Grafana interpolates once), every expression non-empty,
and every expression (variables substituted once, as Grafana does) parses with `promtool check rules`.
Live (--prometheus URL): every expression returns data.
Exit status 1 on any problem. Usage: tests/dashboards_check.py [--prometheus http://127.0.0.1:9090]
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def panels_of(d):
    for p in d.get("panels", []):
        yield p
        for sub in p.get("panels", []):
            yield sub


VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr, variables):
    """One pass, like Grafana: a variable's value is not interpolated again."""
    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        return variables.get(name, m.group(0))
    return VAR.sub(one, expr)


def check(path, problems):
    with open(path) as f:
        d = json.load(f)
    name = os.path.basename(path)
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in d:
            problems.append(f"{name}: missing {key}")
    if d.get("schemaVersion") not in (41, 42):
        problems.append(f"{name}: schemaVersion {d.get('schemaVersion')} is not 41 or 42")
    tvars = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    for v in ("datasource", "job", "instance"):
        if v not in tvars:
            problems.append(f"{name}: no `{v}` template variable")
    if "__inputs" in d or "${DS_" in json.dumps(d):
        problems.append(f"{name}: uses ${{DS_...}} inputs, which break file provisioning")
    for v in ("job", "instance"):
        t = tvars.get(v, {})
        if t and (t.get("allValue") != ".+" or not t.get("includeAll") or not t.get("multi")):
            problems.append(f"{name}: `{v}` must be multi-value with All = `.+` "
                            f"(got allValue={t.get('allValue')!r})")
    variables = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h", "job": ".+", "instance": ".+"}
    for v in tvars.values():
        if v.get("type") == "textbox":
            values = [v.get("query", ""), v.get("current", {}).get("value", ""), v.get("current", {}).get("text", "")]
            if any(VAR.search(str(x)) for x in values):
                problems.append(f"{name}: textbox variable `{v['name']}` holds a variable; Grafana "
                                "interpolates once, so it would reach the data source verbatim")
            variables[v["name"]] = v.get("query", "")
    ids, exprs = set(), []
    for p in panels_of(d):
        pid = p.get("id")
        if pid in ids:
            problems.append(f"{name}: duplicate panel id {pid}")
        ids.add(pid)
        if p.get("type") == "row":
            continue
        if not (p.get("description") or "").strip():
            problems.append(f"{name}: panel {pid} ({p.get('title')}) has no description")
        if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{name}: panel {pid} ({p.get('title')}) has no unit")
        if "gridPos" not in p:
            problems.append(f"{name}: panel {pid} has no gridPos")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{name}: panel {pid} ({p.get('title')}) does not use the datasource variable")
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"{name}: panel {pid} ({p.get('title')}) has no query")
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{name}: panel {pid} target {t.get('refId')} does not use the datasource variable")
            e = (t.get("expr") or "").strip()
            if not e:
                problems.append(f"{name}: panel {pid} ({p.get('title')}) has an empty expression")
                continue
            e = substitute(e, variables)
            if VAR.search(e):
                problems.append(f"{name}: panel {pid} ({p.get('title')}): unresolved variable after one "
                                f"interpolation pass: {e}")
            exprs.append((f"{name} panel {pid} ({p.get('title')})", e))
    return exprs


def promtool_parse(exprs, problems):
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        f.write("groups:\n  - name: dashboards\n    rules:\n")
        for i, (_, e) in enumerate(exprs):
            f.write(f"      - record: dashboard_check_{i}\n        expr: {json.dumps(e)}\n")
        path = f.name
    try:
        r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            problems.append("promtool rejected a dashboard expression:\n" + r.stdout + r.stderr)
            for where, e in exprs:  # find which one, for the report
                problems.append(f"  candidate: {where}: {e}")
    finally:
        os.unlink(path)


def live(url, exprs, problems):
    for where, e in exprs:
        q = urllib.parse.urlencode({"query": e})
        with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            problems.append(f"{where}: query failed: {body}")
        elif not body["data"]["result"]:
            problems.append(f"{where}: no data for {e}")


def main():
    url = None
    if "--prometheus" in sys.argv:
        url = sys.argv[sys.argv.index("--prometheus") + 1].rstrip("/")
    problems, exprs = [], []
    files = sorted(glob.glob(os.path.join(ROOT, "dashboards", "*.json")))
    if not files:
        problems.append("no dashboards found")
    for f in files:
        exprs += check(f, problems)
    promtool_parse(exprs, problems)
    if url:
        live(url, exprs, problems)
    for p in problems:
        print("PROBLEM:", p)
    print(f"dashboards: {len(files)} file(s), {len(exprs)} expression(s), {len(problems)} problem(s)"
          + (f", checked live against {url}" if url else ""))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
