#!/usr/bin/env python3
"""Alert rules as the ecosystem ships them (monitoring-mixin conventions), checked offline:
- every alert has a `severity` label (critical, warning, info), a static `summary` (no templating: it
  groups and titles notifications), a `description` carrying the details, and a `runbook_url` that is
  <repository in Cargo.toml>/blob/main/docs/runbooks.md#<alert name in lower case>, whose section exists;
- alert names are TriplineCamelCase and unique; every expression selects tripline or `up` series.
Usage: tests/alert_rules_lint.py [rules.yml]
"""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def repository():
    m = re.search(r'^repository = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    if not m:
        sys.exit("Cargo.toml: no workspace `repository`")
    return m.group(1).rstrip("/")


def main():
    path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "alert-rules/tripline.rules.yml"
    rules = yaml.safe_load(path.read_text())
    runbooks = (ROOT / "docs/runbooks.md").read_text()
    sections = {line[3:].strip().lower() for line in runbooks.splitlines() if line.startswith("## ")}
    base = repository() + "/blob/main/docs/runbooks.md"
    problems, seen = [], set()
    for g in rules["groups"]:
        for r in g["rules"]:
            name = r.get("alert")
            if not name:
                continue
            where = f"{path.name}: {name}"
            if not re.fullmatch(r"Tripline[A-Z][A-Za-z0-9]+", name):
                problems.append(f"{where}: alert names are TriplineCamelCase")
            if name in seen:
                problems.append(f"{where}: duplicate alert")
            seen.add(name)
            sev = r.get("labels", {}).get("severity")
            if sev not in ("critical", "warning", "info"):
                problems.append(f"{where}: severity label {sev!r} is not critical, warning or info")
            ann = r.get("annotations", {})
            summary, desc = ann.get("summary", ""), ann.get("description", "")
            if not summary:
                problems.append(f"{where}: no summary")
            if "{{" in summary or "$labels" in summary or "$value" in summary:
                problems.append(f"{where}: summary must be static (details go in the description): {summary!r}")
            if summary.endswith("."):
                problems.append(f"{where}: summary is a title, without a final full stop")
            if len(desc) < len(summary) or not desc:
                problems.append(f"{where}: the description must carry the details")
            want = f"{base}#{name.lower()}"
            if ann.get("runbook_url") != want:
                problems.append(f"{where}: runbook_url {ann.get('runbook_url')!r} must be {want!r}")
            if name.lower() not in sections:
                problems.append(f"{where}: docs/runbooks.md has no '## {name}' section")
            if not re.search(r"\btripline_|\bup\{", r.get("expr", "")):
                problems.append(f"{where}: expression selects no tripline series")
    for p in problems:
        print("PROBLEM:", p)
    print(f"alert rules lint: {len(seen)} alerts, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
