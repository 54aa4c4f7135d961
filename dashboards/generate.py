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
         "includeAll": True, "allValue": ".+", "current": {}, "sort": 1},
        {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(tripline_build_info{job=~"$job"}, instance)', "refId": "instance"},
         "definition": 'label_values(tripline_build_info{job=~"$job"}, instance)', "refresh": 2,
         "multi": True, "includeAll": True, "allValue": ".+", "current": {}, "sort": 1},
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
    assert desc, f"panel {title!r} needs a description"
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
    assert desc, f"panel {title!r} needs a description"
    return {"type": "timeseries", "title": title, "description": desc,
            "targets": [target(e, l, chr(65 + i)) for i, (e, l) in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit, "custom": {
                "drawStyle": "line", "lineWidth": 2, "fillOpacity": 10,
                "stacking": {"mode": "normal" if stack else "none", "group": "A"}}},
                "overrides": overrides or []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def table(title, expr, unit="short", desc=""):
    assert desc, f"panel {title!r} needs a description"
    return {"type": "table", "title": title, "description": desc,
            "targets": [dict(target(expr, instant=True), format="table")],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
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
               thresholds=COUNT_STEPS,
               desc="Behaviour outside the learned baselines in the last hour, all models and hosts."), 6, 6)
    L.add(stat("High/critical rule matches (1h)",
               f'sum(increase(tripline_rule_matches_total{{{SEL},severity=~"high|critical"}}[1h]))',
               thresholds=COUNT_STEPS,
               desc="Policy rule matches of severity high or critical in the last hour (alert "
                    "TriplineHighSeverityRuleMatch)."), 6, 6)
    L.add(stat("Hosts reporting", f'count(up{{{SEL}}} == 1)',
               desc="tripline exporters Prometheus scrapes successfully right now."), 6, 6)
    L.add(ts("Anomalies by model and host",
             [(f"sum by (instance, model) (rate(tripline_anomalies_total{{{SEL}}}[$__rate_interval]))",
               "{{instance}} {{model}}")], unit="ops",
             desc="Rate of baseline anomalies per second, by host and model (network_process, "
                  "process_lineage, ...)."), 12, 8)
    L.add(ts("Rule matches by severity",
             [(f"sum by (severity) (rate(tripline_rule_matches_total{{{SEL}}}[$__rate_interval]))",
               "{{severity}}")], unit="ops", stack=True,
             desc="Rate of policy rule matches per second across the selected hosts, stacked by severity."),
          12, 8)
    L.add(table("Rule matches by rule (range)",
                f"sort_desc(sum by (rule, severity) (increase(tripline_rule_matches_total{{{SEL}}}[$__range])))",
                desc="Matches of each policy rule over the dashboard's time range, most frequent first."),
          12, 8)
    L.add(table("Top hosts by findings (range)",
                f"topk(10, sum by (instance) (increase(tripline_rule_matches_total{{{SEL}}}[$__range])) "
                f"+ on (instance) sum by (instance) (increase(tripline_anomalies_total{{{SEL}}}[$__range])))",
                desc="The ten hosts with the most rule matches plus anomalies over the time range."),
          12, 8)
    L.add(ts("Threat level by host", [(f"max by (instance) (tripline_threat_level{{{SEL}}})", "{{instance}}")],
             unit="none", desc="Threat level (0..100) of each host; 60 and above fires TriplineThreatLevelHigh."),
          24, 7)
    L.row("Activity")
    L.add(ts("Process executions", [(f'sum by (instance) (rate(tripline_events_total{{{SEL},kind="exec"}}[$__rate_interval]))',
                                     "{{instance}}")], unit="ops",
             desc="Process executions (execve) per second seen by the kernel probes, by host."), 8, 7)
    L.add(ts("TCP connects", [(f'sum by (instance) (rate(tripline_events_total{{{SEL},kind="connect"}}[$__rate_interval]))',
                               "{{instance}}")], unit="ops",
             desc="Outbound TCP connects per second, by host."), 8, 7)
    L.add(ts("TCP accepts", [(f'sum by (instance) (rate(tripline_events_total{{{SEL},kind="accept"}}[$__rate_interval]))',
                              "{{instance}}")], unit="ops",
             desc="Inbound TCP connections accepted per second, by host."), 8, 7)
    L.add(ts("Baseline learning (1 = learning)",
             [(f"max by (instance, model) (tripline_baseline_learning{{{SEL}}})", "{{instance}} {{model}}")],
             unit="bool", desc="1 while a baseline model learns, 0 while it monitors (anomalies are only "
                               "reported when monitoring)."), 12, 7)
    L.add(ts("Baseline keys by state",
             [(f"sum by (model, state) (tripline_baseline_keys{{{SEL}}})", "{{model}} {{state}}")],
             unit="short", desc="Keys in the baseline models summed over hosts, by model and state (learned, "
                                "seen_in_monitor, accepted)."), 12, 7)
    L.row("Exporter health")
    L.add(ts("Events lost by stage", [(f"sum by (instance, stage) (rate(tripline_events_lost_total{{{SEL}}}[$__rate_interval]))",
                                       "{{instance}} {{stage}}")], unit="ops",
             desc="Any loss is a blind spot (alert TriplineEventsLost)."), 8, 7)
    L.add(ts("Probes attached (min by probe)", [(f"min by (probe) (tripline_probe_attached{{{SEL}}})", "{{probe}}")],
             unit="bool", desc="1 when the probe is attached on every selected host; 0 means a blind spot "
                               "(alert TriplineProbeNotAttached)."), 8, 7)
    L.add(ts("Decode errors", [(f"sum by (instance, reason) (rate(tripline_decode_errors_total{{{SEL}}}[$__rate_interval]))",
                                "{{instance}} {{reason}}")], unit="ops",
             desc="Ring-buffer records per second that could not be decoded, by host and reason."), 8, 7)
    L.add(ts("OTLP records by result", [(f"sum by (result) (rate(tripline_otlp_records_total{{{SEL}}}[$__rate_interval]))",
                                         "{{result}}")], unit="ops",
             desc="OTLP log records per second by result: exported, dropped (queue full), failed (alert "
                  "TriplineOtlpExportFailing)."), 8, 7)
    L.add(ts("Scrape duration", [(f"max by (instance) (scrape_duration_seconds{{{SEL}}})", "{{instance}}")], unit="s",
             desc="How long Prometheus takes to scrape each exporter."), 8, 7)
    L.add(ts("Exporter CPU", [(f"rate(process_cpu_seconds_total{{{SEL}}}[$__rate_interval])", "{{instance}}")],
             unit="percentunit", desc="CPU used by the tripline process (1 = one core), by host."), 8, 7)
    return dashboard("tripline-overview", "tripline / Overview", L.panels, templating(), ["tripline", "security"])


def wall():
    # Grafana interpolates variables once: a textbox value must hold no variable ($__rate_interval
    # would reach Prometheus verbatim). So the textbox holds only the series selector and the panel
    # applies sum(rate(...[$__rate_interval])) around it.
    selector = 'http_requests_total{code=~"5.."}'
    http = {"name": "http_5xx_series", "label": "HTTP 5xx series", "type": "textbox",
            "description": "Selector of your HTTP 5xx request counter, e.g. "
                           "http_server_requests_seconds_count{status=~\"5..\"}",
            "query": selector, "current": {"text": selector, "value": selector}, "hide": 0}
    L = Layout()
    L.add(stat("THREAT LEVEL", f"max(tripline_threat_level{{{SEL}}})", thresholds=THREAT_STEPS, font=96,
               desc="Highest threat level (0..100) across the selected hosts."), 6, 9)
    L.add(stat("NEW BEHAVIOUR (1h)", f"sum(increase(tripline_anomalies_total{{{SEL}}}[1h]))",
               thresholds=COUNT_STEPS, font=96, desc="Baseline anomalies in the last hour, all hosts."), 6, 9)
    L.add(stat("HIGH / CRITICAL (1h)",
               f'sum(increase(tripline_rule_matches_total{{{SEL},severity=~"high|critical"}}[1h]))',
               thresholds=COUNT_STEPS, font=96,
               desc="High or critical policy rule matches in the last hour, all hosts."), 6, 9)
    L.add(stat("EXPORTERS DOWN", f'count(up{{{SEL}}} == 0) or vector(0)', thresholds=COUNT_STEPS, font=96,
               desc="tripline exporters Prometheus cannot scrape: a stopped agent is a classic attacker step."),
          6, 9)
    overrides = [{"matcher": {"id": "byName", "options": "HTTP 5xx"},
                  "properties": [{"id": "custom.axisPlacement", "value": "right"},
                                 {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}]}]
    L.add(ts("Security signals vs HTTP 5xx", [
        (f"sum(rate(tripline_anomalies_total{{{SEL}}}[$__rate_interval]))", "anomalies"),
        (f"sum(rate(tripline_rule_matches_total{{{SEL}}}[$__rate_interval]))", "rule matches"),
        ("sum(rate(${http_5xx_series}[$__rate_interval]))", "HTTP 5xx"),
    ], unit="ops", overrides=overrides,
        desc="Anomaly and rule-match rates (left) over the team's HTTP 5xx rate (right; the query is the "
             "http_5xx_series dashboard variable: your request counter's 5xx series)."), 24, 12)
    L.add(ts("Threat level by host", [(f"max by (instance) (tripline_threat_level{{{SEL}}})", "{{instance}}")],
             unit="none", desc="Threat level (0..100) of each host."), 24, 8)
    return dashboard("tripline-wall", "tripline / Wall", L.panels, templating([http]), ["tripline", "wall"],
                     refresh="10s", time_from="now-3h")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for name, d in [("tripline-overview.json", overview()), ("tripline-wall.json", wall())]:
        with open(os.path.join(here, name), "w") as f:
            json.dump(d, f, indent=2)
            f.write("\n")
        print("wrote", name)
