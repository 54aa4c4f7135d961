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

// Long on purpose: one flat list of the record's attributes, in schema order (docs/events.md).
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

/// The JSON line of a record, written straight from the record: byte for byte what
/// `to_json(r).to_string()` gives (one object, keys sorted, the last of duplicate keys kept) without
/// building a `serde_json::Value` tree, a sorted map and a copy of every string first. The JSON-lines
/// sink writes every event through it (`--events.level all`), so it is on the hot path.
pub fn json_line(r: &Record) -> String {
    enum V<'a> {
        Str(&'a str),
        Int(i64),
        Bool(bool),
        Arr(&'a [String]),
    }
    let time = rfc3339(r.time);
    let mut fields: Vec<(&str, V<'_>)> = Vec::with_capacity(5 + r.attributes.len());
    fields.push(("time", V::Str(&time)));
    fields.push(("event.name", V::Str(r.event_name)));
    fields.push(("severity_text", V::Str(r.severity_text)));
    fields.push(("severity_number", V::Int(i64::from(r.severity_number))));
    fields.push(("body", V::Str(&r.body)));
    for (k, v) in &r.attributes {
        fields.push((
            k,
            match v {
                Value::Str(s) => V::Str(s),
                Value::Int(i) => V::Int(*i),
                Value::Bool(b) => V::Bool(*b),
                Value::StrArray(a) => V::Arr(a),
            },
        ));
    }
    // Stable: of equal keys the later stays last, and it is the one kept (as a map insert would).
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<u8> = Vec::with_capacity(256 + 32 * fields.len() + r.body.len());
    out.push(b'{');
    let mut first = true;
    for (i, (k, v)) in fields.iter().enumerate() {
        if fields.get(i + 1).is_some_and(|(next, _)| next == k) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        let _ = match v {
            V::Str(s) => serde_json::to_writer(&mut out, s),
            V::Int(n) => serde_json::to_writer(&mut out, n),
            V::Bool(b) => serde_json::to_writer(&mut out, b),
            V::Arr(a) => serde_json::to_writer(&mut out, a),
        };
    }
    out.push(b'}');
    // serde_json writes valid UTF-8 from &str input.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod json_line_tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn record(attributes: Attrs, body: &str) -> Record {
        Record {
            event_name: "tripline.process.exec",
            time: SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789),
            severity_number: 9,
            severity_text: "INFO",
            body: body.to_string(),
            attributes,
        }
    }

    #[test]
    fn json_line_is_byte_for_byte_the_value_form() {
        let cases = vec![
            record(vec![], ""),
            record(
                vec![
                    ("process.pid", 42u32.into()),
                    (
                        "process.command_args",
                        vec![
                            "sh".to_string(),
                            "-c".into(),
                            "echo \"hi\"\n\t\\ é \u{1}".into(),
                        ]
                        .into(),
                    ),
                    ("process.executable.path", "/usr/bin/dash".into()),
                    ("tripline.process.args_truncated", false.into()),
                    ("network.peer.port", Value::Int(-1)),
                    ("a.first", "sorted before body".into()),
                    ("zz.last", Value::StrArray(vec![])),
                    // A duplicate: the later value wins, as in a map.
                    ("process.pid", 43u32.into()),
                    // An attribute named like a fixed field replaces it.
                    ("body", "from attributes".into()),
                ],
                "user 1000 ran \"sh\" — <script>\u{7f}",
            ),
        ];
        for r in &cases {
            assert_eq!(json_line(r), to_json(r).to_string());
        }
        assert!(json_line(&cases[1]).contains(r#""process.pid":43"#));
    }
}
