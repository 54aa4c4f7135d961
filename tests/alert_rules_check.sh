#!/usr/bin/env bash
# Offline checks of the alerting assets: rules parse, unit tests pass, Alertmanager example is valid,
# every runbook_url anchor exists in docs/runbooks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
promtool check rules alert-rules/tripline.rules.yml
(cd alert-rules && promtool test rules tripline.rules.test.yml)
amtool check-config alert-rules/alertmanager.example.yml
missing=0
python3 tests/alert_rules_lint.py || missing=1
for anchor in $(grep -o 'runbooks.md#[a-z0-9-]*' alert-rules/tripline.rules.yml | cut -d'#' -f2 | sort -u); do
  if ! grep -qi "^## ${anchor}\$" <(sed 's/^## \(.*\)$/## \L\1/' docs/runbooks.md); then
    echo "runbook anchor #$anchor has no section in docs/runbooks.md"; missing=1
  fi
done
alerts=$(grep -c '^      - alert:' alert-rules/tripline.rules.yml)
tested=$(grep -o 'alertname: Tripline[A-Za-z]*' alert-rules/tripline.rules.test.yml | sort -u | wc -l)
if [ "$alerts" != "$tested" ]; then echo "$alerts alerts but only $tested have unit tests"; missing=1; fi
[ "$missing" = 0 ] && echo "alert rules: OK ($alerts alerts, all tested, all runbooks present)"
exit "$missing"
