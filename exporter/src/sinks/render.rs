//! Rendering: events and findings into log records and their JSON form. The only place records are built;
//! the JSON-lines and OTLP sinks and the HTTP API all call it.
use crate::families;
use crate::model::record::{
    rfc3339, rfc3339_into, severity_number, AttrSink, Attrs, Record, Strs, Value, View,
};
use crate::model::{Event, Finding, FindingSource};

pub fn event_record(ev: &Event) -> Record<'_> {
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
pub fn finding_record(f: &Finding) -> Record<'_> {
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

/// The JSON form used by the HTTP API: one flat object.
pub fn to_json(r: &Record) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("time".into(), rfc3339(r.time).into());
    m.insert("event.name".into(), r.event_name.into());
    m.insert("severity_text".into(), r.severity_text.into());
    m.insert("severity_number".into(), r.severity_number.into());
    m.insert("body".into(), r.body.clone().into());
    for (k, v) in &r.attributes {
        let v = match v.view() {
            View::Str(s) => serde_json::Value::from(s),
            View::Time(t) => serde_json::Value::from(rfc3339(t)),
            View::Int(i) => serde_json::Value::from(i),
            View::Bool(b) => serde_json::Value::from(b),
            View::Strs(a) => a.iter().collect(),
        };
        m.insert((*k).to_string(), v);
    }
    serde_json::Value::Object(m)
}

/// The JSON line of a record (findings in the JSON-lines sink; events go through [`EventLines`], which
/// writes the same bytes): the same object as [`to_json`], written straight from the record with its
/// fields in schema order (time, event name, severity, body, then the attributes as the family lists
/// them) instead of building a `serde_json::Value` tree, a sorted map and a copy of every string first.
/// A record's attribute names are unique (the families' contract, tested in `unique_attribute_names`).
pub fn json_line(r: &Record) -> String {
    let mut out = Vec::new();
    debug_assert!(
        unique_names(r),
        "{}: duplicate attribute names",
        r.event_name
    );
    out.reserve(1024 + 48 * r.attributes.len() + r.body.len());
    json_head(
        &mut out,
        r.time,
        r.event_name,
        r.severity_number,
        r.severity_text,
    );
    json_str(&mut out, &r.body);
    for (k, v) in &r.attributes {
        json_attribute(&mut out, k, v.view());
    }
    out.push(b'}');
    // Only whole &str values and ASCII punctuation were written: valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Event lines for the JSON-lines writer, which renders every event (`--events.level all`), so this is
/// on the hot path: the line an event's record gives ([`json_line`] of [`event_record`], byte for byte,
/// which a test holds), written straight from the event. The family writes its attributes into the line
/// as it lists them; no record, no attribute list, and the line and the body are buffers kept from one
/// event to the next.
#[derive(Default)]
pub struct EventLines {
    line: Vec<u8>,
    body: String,
}

impl EventLines {
    pub fn render(&mut self, ev: &Event) -> &[u8] {
        let out = &mut self.line;
        out.clear();
        out.reserve(2048);
        let (severity_number, severity_text) = severity_number(None);
        json_head(
            out,
            ev.time,
            ev.kind.event_name(),
            severity_number,
            severity_text,
        );
        self.body.clear();
        families::summary_into(ev, &mut self.body);
        json_str(out, &self.body);
        families::attributes_into(ev, &mut JsonAttributes(out));
        out.push(b'}');
        out
    }
}

/// Attributes written into a JSON line as they come.
struct JsonAttributes<'o>(&'o mut Vec<u8>);

impl<'a> AttrSink<'a> for JsonAttributes<'_> {
    // Inlined where a family pushes, where the value's form is known: the match on it folds to one
    // writer, and dropping it to nothing for numbers and borrowed strings.
    #[inline(always)]
    fn push(&mut self, (k, v): (&'static str, Value<'a>)) {
        json_key(self.0, k);
        // Only owned values are dropped: a value's drop is a call that tests its form again, as many
        // times as a line has attributes, though most hold nothing to free.
        let v = std::mem::ManuallyDrop::new(v);
        match &*v {
            Value::Ref(s) => json_str(self.0, s),
            Value::Int(n) => json_value(self.0, View::Int(*n)),
            Value::Bool(b) => json_value(self.0, View::Bool(*b)),
            Value::Strs(a) => json_strs(self.0, *a),
            Value::Time(t) => json_value(self.0, View::Time(*t)),
            Value::Str(_) | Value::Text(_) | Value::StrArray(_) | Value::Texts(_) => {
                json_value(self.0, v.view());
                drop(std::mem::ManuallyDrop::into_inner(v));
            }
        }
    }
}

/// A line's fixed fields up to the body's value: `{"time":…,"event.name":…,…,"body":`.
fn json_head(
    out: &mut Vec<u8>,
    time: std::time::SystemTime,
    event_name: &str,
    severity_number: i32,
    severity_text: &str,
) {
    out.extend_from_slice(b"{\"time\":");
    json_value(out, View::Time(time));
    out.extend_from_slice(b",\"event.name\":");
    json_str(out, event_name);
    out.extend_from_slice(b",\"severity_text\":");
    json_str(out, severity_text);
    out.extend_from_slice(b",\"severity_number\":");
    out.extend_from_slice(itoa::Buffer::new().format(severity_number).as_bytes());
    out.extend_from_slice(b",\"body\":");
}

/// `,"name":value`.
fn json_attribute(out: &mut Vec<u8>, k: &str, v: View) {
    json_key(out, k);
    json_value(out, v);
}

/// `,"name":`.
fn json_key(out: &mut Vec<u8>, k: &str) {
    // Attribute names are the families' static names (letters, digits, `.` and `_`).
    debug_assert!(!needs_escape(k.as_bytes()), "{k}");
    out.reserve(k.len() + 4);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

#[inline(always)]
fn json_value(out: &mut Vec<u8>, v: View) {
    match v {
        View::Str(s) => json_str(out, s),
        View::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        View::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        View::Strs(a) => json_strs(out, a),
        // RFC 3339 is digits and `-:T.Z`: nothing to escape.
        View::Time(t) => {
            out.push(b'"');
            rfc3339_into(t, out);
            out.push(b'"');
        }
    }
}

/// A JSON array of strings.
fn json_strs(out: &mut Vec<u8>, a: Strs) {
    out.push(b'[');
    for (i, s) in a.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, s);
    }
    out.push(b']');
}

/// A JSON string. Most strings need no escaping (no control character, quote or backslash): they are
/// checked ([`needs_escape`]) and copied whole; the rest go through serde_json's escaper.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether any byte is below 0x20, a quote or a backslash. Every string of every event line passes
/// through here, so this scan is a large share of a line's cost: strings under sixteen bytes (most
/// names and numbers) byte by byte through a table; longer ones sixteen bytes at a time with SSE2 (part
/// of x86-64's baseline), the tail as the last sixteen bytes (overlapping bytes already tested).
#[cfg(target_arch = "x86_64")]
fn needs_escape(b: &[u8]) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_setzero_si128,
    };
    if b.len() < 16 {
        return b.iter().any(|&c| ESCAPED[usize::from(c)]);
    }
    // SAFETY: SSE2 is part of every x86-64 CPU; every load reads 16 bytes inside the slice (the last
    // one starts at len - 16 ≥ 0).
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let below_space = _mm_set1_epi8(0x1f);
        let test = |p: *const u8| -> __m128i {
            let v = _mm_loadu_si128(p.cast());
            // A byte ≤ 0x1f is its own unsigned minimum with 0x1f.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v);
            let special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
            _mm_or_si128(control, special)
        };
        let mut hits = _mm_setzero_si128();
        let mut at = 0;
        while at + 16 <= b.len() {
            hits = _mm_or_si128(hits, test(b.as_ptr().add(at)));
            at += 16;
        }
        if at < b.len() {
            hits = _mm_or_si128(hits, test(b.as_ptr().add(b.len() - 16)));
        }
        _mm_movemask_epi8(hits) != 0
    }
}

/// The bytes a JSON string must escape.
#[cfg(target_arch = "x86_64")]
static ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20 || i == b'"' as usize || i == b'\\' as usize;
        i += 1;
    }
    t
};

#[cfg(not(target_arch = "x86_64"))]
fn needs_escape(b: &[u8]) -> bool {
    needs_escape_words(b)
}

/// [`needs_escape`] as a word-at-a-time test ("determine if a word has a byte less than n" / "has a zero
/// byte", exact as to whether one exists).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn needs_escape_words(b: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let special = |w: u64| {
        let below_space = w.wrapping_sub(ONES * 0x20) & !w;
        let q = w ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let s = w ^ (ONES * u64::from(b'\\'));
        let backslash = s.wrapping_sub(ONES) & !s;
        (below_space | quote | backslash) & HIGH != 0
    };
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if special(u64::from_ne_bytes(w)) {
            return true;
        }
    }
    // The tail, padded with spaces (which need no escaping).
    let mut w = [b' '; 8];
    w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    special(u64::from_ne_bytes(w))
}

/// Whether every attribute name of a record is distinct and none is one of the fixed fields.
pub fn unique_names(r: &Record) -> bool {
    let mut names: Vec<&str> = r.attributes.iter().map(|(k, _)| *k).collect();
    names.extend([
        "time",
        "event.name",
        "severity_text",
        "severity_number",
        "body",
    ]);
    names.sort_unstable();
    names.windows(2).all(|w| w[0] != w[1])
}

#[cfg(test)]
mod json_line_tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::record::Value;
    use crate::model::Text;

    fn record<'a>(attributes: Attrs<'a>, body: &str) -> Record<'a> {
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
    fn json_line_is_the_value_form_in_schema_order() {
        // Borrowed argv, as an event's record carries it.
        let parent_args = ["x".to_string()];
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
                    (
                        "process.executable.path",
                        Text::from("/usr/bin/dash").into(),
                    ),
                    (
                        "tripline.process.ancestors",
                        vec![Text::from("/a\"b")].into(),
                    ),
                    (
                        "tripline.process.parent.command_args",
                        parent_args[..].into(),
                    ),
                    ("tripline.event.kind", "exec".into()),
                    ("tripline.process.args_truncated", false.into()),
                    ("network.peer.port", Value::Int(-1)),
                    (
                        "a.first",
                        "0123456789abcdef0123456789abcdef\u{1f}".to_string().into(),
                    ),
                    ("zz.last", Value::StrArray(vec![])),
                    (
                        "process.creation.time",
                        Value::Time(SystemTime::UNIX_EPOCH + Duration::new(1_764_000_000, 5_000)),
                    ),
                ],
                "user 1000 ran \"sh\" — <script>\u{7f}",
            ),
        ];
        for r in &cases {
            let line = json_line(r);
            let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(parsed, to_json(r), "{line}");
        }
        let line = json_line(&cases[1]);
        assert!(line.starts_with(r#"{"time":"2025-11-24T"#), "{line}");
        assert!(
            line.find("process.pid").unwrap() < line.find("process.command_args").unwrap(),
            "attributes keep the family's order: {line}"
        );
        assert!(line.contains(r#""a.first":"0123456789abcdef0123456789abcdef\u001f""#));
        assert!(line.contains(r#""process.creation.time":"2025-11-24T16:00:00.000005Z""#));
        // A time equals its text, as every value equals its content whatever the form.
        assert_eq!(
            Value::Time(SystemTime::UNIX_EPOCH + Duration::new(1_764_000_000, 5_000)),
            Value::from("2025-11-24T16:00:00.000005Z")
        );
    }

    /// The vector and word-at-a-time tests agree with the byte-at-a-time one for every byte value at every
    /// position of strings of 1 to 17 bytes and around 16-byte multiples, between any neighbours (ASCII,
    /// space, DEL, UTF-8 continuation bytes).
    #[test]
    fn needs_escape_is_exact() {
        let naive = |b: &[u8]| b.iter().any(|&x| x < 0x20 || x == b'"' || x == b'\\');
        for len in (1..=17).chain([31, 32, 33, 40, 47, 48]) {
            for fill in [b'a', 0xa9, b'~', b' ', 0x21, 0x5d, 0x20, 0x7f, 0xff] {
                for pos in 0..len {
                    for x in 0..=255u8 {
                        let mut b = vec![fill; len];
                        b[pos] = x;
                        assert_eq!(needs_escape(&b), naive(&b), "{b:?}");
                        assert_eq!(needs_escape_words(&b), naive(&b), "{b:?}");
                    }
                }
            }
        }
        assert!(!needs_escape(b""));
    }

    /// Every kind, with every optional part of the process filled in, and every finding source over it:
    /// no attribute name repeats (the JSON line relies on it) and the line parses back to the record.
    #[test]
    fn unique_attribute_names() {
        use crate::families::encode::{bare_event, exec, exit, file, fork, header, net, sys};
        use crate::model::{EventKind, Family, FindingSource, Parent, Part, Severity};
        use tripline_common::{flags, sysop};

        let rich = |bytes: &[u8]| {
            let mut ev = bare_event(bytes);
            let p = &mut ev.process;
            (p.pid, p.ppid, p.current_ppid, p.uid, p.euid) = (7, 5, 1, 1000, 0);
            p.exe = "/usr/bin/python3".into();
            p.script = Some("/tmp/x.py".into());
            p.exe_resolution = "spelled";
            p.args = vec!["python3".to_string(), "/tmp/x.py".into()].into();
            p.stdio_socket = true;
            p.auid = Some(1000);
            ev.parent = Some(Parent {
                exe: "/usr/bin/bash".into(),
                script: Some("/etc/rc".into()),
                args: vec!["bash".to_string()].into(),
                ..Parent::default()
            });
            ev.ancestors = ["/usr/bin/bash".into(), "/usr/lib/systemd/systemd".into()].into();
            ev.wire_flags = flags::READ_ERROR;
            ev
        };
        let mut checked = 0;
        // One writer for every event, as the JSON-lines thread has: its buffers carry over.
        let mut lines = EventLines::default();
        for k in EventKind::ALL {
            for result in [0, -13] {
                let h = header(k.wire(), 0, 7);
                let bytes = match k.family() {
                    Family::Process => match k {
                        EventKind::Fork => fork(h, 8, 9),
                        EventKind::Exit => exit(h, 0x0109),
                        _ => exec(h, "./x", &["x"]),
                    },
                    Family::Net => net(
                        h,
                        "127.0.0.1:1".parse().unwrap(),
                        "10.0.0.2:443".parse().unwrap(),
                        result,
                    ),
                    Family::File => file(h, "/etc/x", Some("/etc/y"), 0o4755, result),
                    Family::Privilege | Family::Tamper | Family::IoUring => {
                        sys(h, sysop::SETUID, [0, 1, 2, 3], Some("name"), result)
                    }
                };
                let ev = Arc::new(rich(&bytes));
                let rule = FindingSource::Rule {
                    id: "r".into(),
                    description: "d".into(),
                    category: "execution".into(),
                    techniques: vec!["T1059".into()],
                    ruleset: "default".into(),
                };
                let anomaly = FindingSource::Anomaly {
                    model: "process_lineage".into(),
                    key: "a -> b".into(),
                };
                let tamper = FindingSource::Tamper {
                    reason: "unclean_stop",
                    detail: "d".into(),
                    gap_seconds: Some(3),
                };
                let account = crate::model::account::AccountChange {
                    kind: crate::model::account::AccountChangeKind::ALL[0],
                    name: "eve".into(),
                    group: Some("sudo".into()),
                    old: Some("1".into()),
                    new: Some("2".into()),
                };
                let part = |source: &FindingSource| Part {
                    source: source.clone(),
                    severity: Severity::high,
                    summary: "s".into(),
                    event: ev.clone(),
                    account: None,
                };
                // The writer's line straight from the event is the record's line, byte for byte,
                // for the rich event and for the bare one (no parent, script or ancestry).
                for ev in [&*ev, &bare_event(&bytes)] {
                    let line = json_line(&event_record(ev));
                    assert_eq!(
                        std::str::from_utf8(lines.render(ev)).unwrap(),
                        line,
                        "{k:?}"
                    );
                }
                let mut records = vec![event_record(&ev)];
                for source in [rule, anomaly, tamper] {
                    records.push(
                        finding_record(&Finding {
                            id: "f".into(),
                            time: ev.time,
                            severity: Severity::high,
                            summary: "s".into(),
                            parts: vec![part(&source), part(&source)],
                            source,
                            event: ev.clone(),
                            account: Some(account.clone()),
                        })
                        .into_owned(),
                    );
                }
                for r in &records {
                    assert!(unique_names(r), "{k:?}: {:?}", r.attributes);
                    let parsed: serde_json::Value = serde_json::from_str(&json_line(r)).unwrap();
                    assert_eq!(parsed, to_json(r));
                    // The owned copy (what the OTLP thread gets) says the same, value for value.
                    let owned = r.clone().into_owned();
                    assert_eq!(&owned, r);
                    assert_eq!(json_line(&owned), json_line(r));
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, EventKind::ALL.len() * 2 * 4);
    }
}
