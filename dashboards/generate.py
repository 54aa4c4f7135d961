#!/usr/bin/env python3
"""Generates the tripline Grafana dashboards (dashboards as code). Run: python3 dashboards/generate.py

Every panel and target uses the templated `datasource` variable; `job` and `instance` variables filter
every query. Validated offline by tests/dashboards_check.py and against a real Prometheus by the stack test.
"""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job",instance=~"$instance"'


def templating(extra=()):
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1},
        {"name": "job", "label": "Job", "type": "query", "datasource": DS,
         "query": {"query": "label_values(tripline_build_info, job)", "refId": "job"},
         "definition": "label_values(tripline_build_info, job)", "refresh": 2, "multi": True,
         "includeAll": True, "allValue": ".*", "current": {}, "sort": 1},
        {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(tripline_build_info{job=~"$job"}, instance)', "refId": "instance"},
         "definition": 'label_values(tripline_build_info{job=~"$job"}, instance)', "refresh": 2,
         "multi": True, "includeAll": True, "allValue": ".*", "current": {}, "sort": 1},
        *extra,
    ]}


class Layout:
    def __init__(self):
        self.panels, self.next_id, self.y, self.x, self.row_h = [], 1, 0, 0, 0

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.y += self.row_h
            self.x, self.row_h = 0, 0
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["datasource"] = DS
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def row(self, title):
        if self.x:
            self.y += self.row_h
            self.x, self.row_h = 0, 0
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.next_id += 1
        self.y += 1


def target(expr, legend="", ref="A", instant=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t["instant"] = True
        t["range"] = False
    return t


def stat(title, expr, unit="none", thresholds=None, desc="", font=None):
    steps = thresholds or [{"color": "green", "value": None}]
    p = {"type": "stat", "title": title, "description": desc, "targets": [target(expr, instant=True)],
         "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
                         "overrides": []},
         "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                     "colorMode": "background", "graphMode": "none", "textMode": "value",
                     "justifyMode": "center", "orientation": "auto"}}
    if font:
        p["options"]["text"] = {"valueSize": font}
    return p


def ts(title, targets, unit="short", desc="", stack=False, overrides=None):
    return {"type": "timeseries", "title": title, "description": desc,
            "targets": [target(e, l, chr(65 + i)) for i, (e, l) in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit, "custom": {
                "drawStyle": "line", "lineWidth": 2, "fillOpacity": 10,
                "stacking": {"mode": "normal" if stack else "none", "group": "A"}}},
                "overrides": overrides or []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def table(title, expr, desc=""):
    return {"type": "table", "title": title, "description": desc,
            "targets": [dict(target(expr, instant=True), format="table")],
            "fieldConfig": {"defaults": {}, "overrides": []},
            "options": {"showHeader": True},
            "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]}


def dashboard(uid, title, panels, tmpl, tags, refresh="30s", time_from="now-6h"):
    return {"uid": uid, "title": title, "tags": tags, "timezone": "browser", "editable": True,
            "schemaVersion": 41, "version": 1, "refresh": refresh, "graphTooltip": 1,
            "time": {"from": time_from, "to": "now"}, "templating": tmpl, "annotations": {"list": []},
            "links": [], "panels": panels}


THREAT_STEPS = [{"color": "green", "value": None}, {"color": "yellow", "value": 20},
                {"color": "orange", "value": 40}, {"color": "red", "value": 60}]
COUNT_STEPS = [{"color": "green", "value": None}, {"color": "red", "value": 1}]


def overview():
    L = Layout()
    L.row("Threats")
    L.add(stat("Fleet threat level", f"max(tripline_threat_level{{{SEL}}})", thresholds=THREAT_STEPS,
               desc="Highest threat level (0..100) across the selected hosts."), 6, 6)
    L.add(stat("Anomalies (1h)", f"sum(increase(tripline_anomalies_total{{{SEL}}}[1h]))",
               thresholds=COUNT_STEPS), 6, 6)
    L.add(stat("High/critical rule matches (1h)",
               f'sum(increase(tripline_rule_matches_total{{{SEL},severity=~"high|critical"}}[1h]))',
               thresholds=COUNT_STEPS), 6, 6)
    L.add(stat("Hosts reporting", f'count(up{{{SEL}}} == 1)'), 6, 6)
    L.add(ts("Anomalies by model and host",
             [(f"sum by (instance, model) (rate(tripline_anomalies_total{{{SEL}}}[$__rate_interval]))",
               "{{instance}} {{model}}")], unit="ops"), 12, 8)
    L.add(ts("Rule matches by severity",
             [(f"sum by (severity) (rate(tripline_rule_matches_total{{{SEL}}}[$__rate_interval]))",
               "{{severity}}")], unit="ops", stack=True), 12, 8)
    L.add(table("Rule matches by rule (range)",
                f"sort_desc(sum by (rule, severity) (increase(tripline_rule_matches_total{{{SEL}}}[$__range])))"),
          12, 8)
    L.add(table("Top hosts by findings (range)",
                f"topk(10, sum by (instance) (increase(tripline_rule_matches_total{{{SEL}}}[$__range])) "
                f"+ on (instance) sum by (instance) (increase(tripline_anomalies_total{{{SEL}}}[$__range])))"),
          12, 8)
    L.add(ts("Threat level by host", [(f"max by (instance) (tripline_threat_level{{{SEL}}})", "{{instance}}")],
             unit="none"), 24, 7)
    L.row("Activity")
    L.add(ts("Process executions", [(f'sum by (instance) (rate(tripline_events_total{{{SEL},kind="exec"}}[$__rate_interval]))',
                                     "{{instance}}")], unit="ops"), 8, 7)
    L.add(ts("TCP connects", [(f'sum by (instance) (rate(tripline_events_total{{{SEL},kind="connect"}}[$__rate_interval]))',
                               "{{instance}}")], unit="ops"), 8, 7)
    L.add(ts("TCP accepts", [(f'sum by (instance) (rate(tripline_events_total{{{SEL},kind="accept"}}[$__rate_interval]))',
                              "{{instance}}")], unit="ops"), 8, 7)
    L.add(ts("Baseline learning (1 = learning)",
             [(f"max by (instance, model) (tripline_baseline_learning{{{SEL}}})", "{{instance}} {{model}}")],
             unit="none"), 12, 7)
    L.add(ts("Baseline keys by state",
             [(f"sum by (model, state) (tripline_baseline_keys{{{SEL}}})", "{{model}} {{state}}")]), 12, 7)
    L.row("Exporter health")
    L.add(ts("Events lost by stage", [(f"sum by (instance, stage) (rate(tripline_events_lost_total{{{SEL}}}[$__rate_interval]))",
                                       "{{instance}} {{stage}}")], unit="ops",
             desc="Any loss is a blind spot (alert TriplineEventsLost)."), 8, 7)
    L.add(ts("Probes attached (min by probe)", [(f"min by (probe) (tripline_probe_attached{{{SEL}}})", "{{probe}}")]),
          8, 7)
    L.add(ts("Decode errors", [(f"sum by (instance, reason) (rate(tripline_decode_errors_total{{{SEL}}}[$__rate_interval]))",
                                "{{instance}} {{reason}}")], unit="ops"), 8, 7)
    L.add(ts("OTLP records by result", [(f"sum by (result) (rate(tripline_otlp_records_total{{{SEL}}}[$__rate_interval]))",
                                         "{{result}}")], unit="ops"), 8, 7)
    L.add(ts("Scrape duration", [(f"max by (instance) (scrape_duration_seconds{{{SEL}}})", "{{instance}}")], unit="s"),
          8, 7)
    L.add(ts("Exporter CPU", [(f"rate(process_cpu_seconds_total{{{SEL}}}[$__rate_interval])", "{{instance}}")],
             unit="percentunit"), 8, 7)
    return dashboard("tripline-overview", "tripline / Overview", L.panels, templating(), ["tripline", "security"])


def wall():
    http = {"name": "http_5xx_query", "label": "HTTP 5xx query", "type": "textbox",
            "query": 'sum(rate(http_requests_total{code=~"5.."}[$__rate_interval]))',
            "current": {"text": 'sum(rate(http_requests_total{code=~"5.."}[$__rate_interval]))',
                        "value": 'sum(rate(http_requests_total{code=~"5.."}[$__rate_interval]))'}, "hide": 0}
    L = Layout()
    L.add(stat("THREAT LEVEL", f"max(tripline_threat_level{{{SEL}}})", thresholds=THREAT_STEPS, font=96), 6, 9)
    L.add(stat("NEW BEHAVIOUR (1h)", f"sum(increase(tripline_anomalies_total{{{SEL}}}[1h]))",
               thresholds=COUNT_STEPS, font=96), 6, 9)
    L.add(stat("HIGH / CRITICAL (1h)",
               f'sum(increase(tripline_rule_matches_total{{{SEL},severity=~"high|critical"}}[1h]))',
               thresholds=COUNT_STEPS, font=96), 6, 9)
    L.add(stat("EXPORTERS DOWN", f'count(up{{{SEL}}} == 0) or vector(0)', thresholds=COUNT_STEPS, font=96), 6, 9)
    overrides = [{"matcher": {"id": "byName", "options": "HTTP 5xx"},
                  "properties": [{"id": "custom.axisPlacement", "value": "right"},
                                 {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}]}]
    L.add(ts("Security signals vs HTTP 5xx", [
        (f"sum(rate(tripline_anomalies_total{{{SEL}}}[$__rate_interval]))", "anomalies"),
        (f"sum(rate(tripline_rule_matches_total{{{SEL}}}[$__rate_interval]))", "rule matches"),
        ("$http_5xx_query", "HTTP 5xx"),
    ], unit="ops", overrides=overrides,
        desc="Anomaly and rule-match rates (left) over the team's HTTP 5xx rate (right; the query is the "
             "http_5xx_query dashboard variable)."), 24, 12)
    L.add(ts("Threat level by host", [(f"max by (instance) (tripline_threat_level{{{SEL}}})", "{{instance}}")]), 24, 8)
    return dashboard("tripline-wall", "tripline / Wall", L.panels, templating([http]), ["tripline", "wall"],
                     refresh="10s", time_from="now-3h")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for name, d in [("tripline-overview.json", overview()), ("tripline-wall.json", wall())]:
        with open(os.path.join(here, name), "w") as f:
            json.dump(d, f, indent=2)
            f.write("\n")
        print("wrote", name)
