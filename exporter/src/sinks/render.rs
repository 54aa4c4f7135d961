//! Rendering: events and findings into log records and their JSON form. The only place records are built;
//! the JSON-lines and OTLP sinks and the HTTP API all call it.
use crate::families;
use crate::model::record::{rfc3339, severity_number, Attrs, Record, Value};
use crate::model::{Event, Finding, FindingSource};

pub fn event_record(ev: &Event) -> Record {
    let (severity_number, severity_text) = severity_number(None);
    Record {
        event_name: ev.kind.event_name(),
        time: ev.time,
        severity_number,
        severity_text,
        body: families::summary(ev),
        attributes: families::attributes(ev),
    }
}

pub fn finding_record(f: &Finding) -> Record {
    let (severity_number, severity_text) = severity_number(Some(f.severity));
    let mut a: Attrs = vec![
        ("tripline.finding.id", f.id.clone().into()),
        ("tripline.finding.severity", f.severity.as_str().into()),
    ];
    let event_name = match &f.source {
        FindingSource::Rule {
            id,
            description,
            category,
            techniques,
            ruleset,
        } => {
            a.push(("security_rule.name", id.clone().into()));
            a.push(("security_rule.description", description.clone().into()));
            a.push(("security_rule.category", category.clone().into()));
            a.push(("security_rule.ruleset.name", ruleset.clone().into()));
            if let Some(t) = techniques.first() {
                a.push(("security_rule.reference", attack_url(t).into()));
            }
            a.push(("tripline.rule.techniques", techniques.clone().into()));
            "tripline.rule.match"
        }
        FindingSource::Anomaly { model, key } => {
            a.push(("tripline.baseline.model", model.clone().into()));
            a.push(("tripline.baseline.key", key.clone().into()));
            "tripline.baseline.anomaly"
        }
        FindingSource::Tamper {
            reason,
            detail,
            gap_seconds,
        } => {
            a.push(("security_rule.name", format!("tamper_{reason}").into()));
            a.push(("security_rule.category", "defense-evasion".into()));
            a.push(("security_rule.ruleset.name", "tripline-self".into()));
            a.push(("security_rule.reference", attack_url("T1562.001").into()));
            a.push((
                "tripline.rule.techniques",
                vec!["T1562.001".to_string()].into(),
            ));
            a.push(("tripline.tamper.reason", (*reason).into()));
            a.push(("tripline.tamper.detail", detail.clone().into()));
            if let Some(g) = gap_seconds {
                a.push(("tripline.tamper.gap_seconds", (*g as i64).into()));
            }
            a.push(("process.pid", f.event.process.pid.into()));
            a.push((
                "process.executable.path",
                f.event.process.exe.clone().into(),
            ));
            "tripline.tamper.detected"
        }
    };
    if let Some(acct) = &f.account {
        acct.attributes(&mut a);
    }
    if f.parts.len() > 1 {
        let names: Vec<String> = f.parts.iter().map(|p| p.summary.clone()).collect();
        a.push(("tripline.finding.parts", names.into()));
        let rules: Vec<String> = f
            .parts
            .iter()
            .filter_map(|p| match &p.source {
                FindingSource::Rule { id, .. } => Some(id.clone()),
                _ => None,
            })
            .collect();
        if !rules.is_empty() {
            a.push(("tripline.finding.rules", rules.into()));
        }
    }
    a.push((
        "tripline.finding.part_count",
        (f.parts.len().max(1) as i64).into(),
    ));
    if !matches!(f.source, FindingSource::Tamper { .. }) {
        a.extend(families::attributes(&f.event));
    }
    Record {
        event_name,
        time: f.time,
        severity_number,
        severity_text,
        body: f.summary.clone(),
        attributes: a,
    }
}

/// The MITRE ATT&CK page of a technique id (`T1059.004` → `https://attack.mitre.org/techniques/T1059/004/`):
/// `security_rule.reference` is a URL in the semantic conventions.
pub fn attack_url(technique: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}/",
        technique.replace('.', "/")
    )
}

/// The JSON form used by `tripline events`, the JSON-lines sink and the API: one flat object.
pub fn to_json(r: &Record) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("time".into(), rfc3339(r.time).into());
    m.insert("event.name".into(), r.event_name.into());
    m.insert("severity_text".into(), r.severity_text.into());
    m.insert("severity_number".into(), r.severity_number.into());
    m.insert("body".into(), r.body.clone().into());
    for (k, v) in &r.attributes {
        let v = match v {
            Value::Str(s) => serde_json::Value::from(s.clone()),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Bool(b) => serde_json::Value::from(*b),
            Value::StrArray(a) => serde_json::Value::from(a.clone()),
        };
        m.insert((*k).to_string(), v);
    }
    serde_json::Value::Object(m)
}
