//! The one log schema, shared by the JSON-lines and OTLP sinks and the API.
//!
//! Attribute names follow OpenTelemetry semantic conventions (`process.*`, `network.*`, `file.*`,
//! `security_rule.*`); tripline's own additions live under `tripline.*`. Integers stay integers and argv
//! is a string array.
use std::time::SystemTime;

use crate::detect::{Finding, FindingSource};
use crate::event::{Event, EventData};
use crate::sinks::metrics::Severity;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    StrArray(Vec<String>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<u16> for Value {
    fn from(v: u16) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Value {
        Value::StrArray(v)
    }
}

/// OpenTelemetry severity numbers: INFO for events; WARN/ERROR/FATAL for findings.
pub fn severity_number(s: Option<Severity>) -> (i32, &'static str) {
    match s {
        None | Some(Severity::info) => (9, "INFO"),
        Some(Severity::low) | Some(Severity::medium) => (13, "WARN"),
        Some(Severity::high) => (17, "ERROR"),
        Some(Severity::critical) => (21, "FATAL"),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `tripline.<domain>.<action>`.
    pub event_name: &'static str,
    /// When it happened (kernel time converted to wall clock).
    pub time: SystemTime,
    pub severity_number: i32,
    pub severity_text: &'static str,
    /// A one-line human summary.
    pub body: String,
    pub attributes: Vec<(&'static str, Value)>,
}

impl Record {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Attributes of an event (process, parent, network).
pub fn event_attributes(ev: &Event) -> Vec<(&'static str, Value)> {
    let p = &ev.process;
    let mut a: Vec<(&'static str, Value)> = vec![
        ("tripline.event.kind", ev.kind.as_str().into()),
        ("process.pid", p.pid.into()),
        ("process.thread.id", p.tid.into()),
        ("process.parent_pid", p.ppid.into()),
        ("process.executable.path", p.exe.clone().into()),
        ("process.executable.name", p.exe_name().to_string().into()),
        ("process.command", p.comm.clone().into()),
        ("process.command_args", p.args.clone().into()),
        ("process.args_count", (p.args.len() as i64).into()),
        ("tripline.process.args_truncated", p.args_truncated.into()),
        ("process.user.id", p.euid.into()),
        ("process.real_user.id", p.uid.into()),
        ("process.group.id", p.egid.into()),
        ("process.real_group.id", p.gid.into()),
        ("process.creation.time_ns", (p.start_ns as i64).into()),
        ("tripline.process.cgroup_id", (p.cgroup_id as i64).into()),
    ];
    if let Some(auid) = p.auid {
        a.push(("tripline.process.login_user.id", auid.into()));
    }
    if let Some(parent) = &ev.parent {
        a.push(("process.parent.executable.path", parent.exe.clone().into()));
        a.push(("process.parent.command_args", parent.args.clone().into()));
        a.push(("process.parent.user.id", parent.euid.into()));
    }
    a.push(("tripline.process.ancestors", ev.ancestors.clone().into()));
    match &ev.data {
        EventData::Exec {
            filename,
            filename_truncated,
        } => {
            a.push(("tripline.exec.filename", filename.clone().into()));
            // A setuid/setgid binary: the effective ids differ from the real ones after exec.
            if p.uid != p.euid || p.gid != p.egid {
                a.push(("tripline.exec.setid", true.into()));
            }
            if *filename_truncated {
                a.push(("tripline.exec.filename_truncated", true.into()));
            }
        }
        EventData::Fork { child_pid, .. } => {
            a.push(("tripline.fork.child_pid", (*child_pid).into()))
        }
        EventData::Exit { status } => {
            a.push(("process.exit.code", i64::from((status >> 8) & 0xff).into()));
            let signal = status & 0x7f;
            if signal != 0 {
                a.push(("tripline.process.exit.signal", signal.into()));
            }
        }
        EventData::File(f) => {
            a.push(("file.path", f.path.clone().into()));
            if let Some(p) = &f.new_path {
                a.push(("tripline.file.new_path", p.clone().into()));
            }
            a.push(("tripline.file.path_resolved", f.resolved.into()));
            a.push(("tripline.file.flags", f.flags.into()));
            if f.mode != 0 {
                a.push(("file.mode", format!("{:04o}", f.mode & 0o7777).into()));
            }
            if let Some(u) = f.owner_uid {
                a.push(("file.owner.id", u.into()));
            }
            if let Some(g) = f.owner_gid {
                a.push(("file.group.id", g.into()));
            }
            a.push(("tripline.file.result", f.result.into()));
            if f.result < 0 {
                a.push(("error.type", errno_name(-f.result).into()));
            }
        }
        EventData::Sys(x) => {
            a.push(("tripline.syscall.name", x.syscall.into()));
            a.push(("tripline.syscall.result", x.result.into()));
            if x.result < 0 {
                a.push(("error.type", errno_name(-x.result).into()));
            }
            match ev.kind {
                crate::event::EventKind::PrivChange => {
                    let names: &[&'static str] = match x.syscall {
                        "setuid" | "setgid" => &["tripline.privilege.requested.id"],
                        "setreuid" | "setregid" => &[
                            "tripline.privilege.requested.real_id",
                            "tripline.privilege.requested.effective_id",
                        ],
                        _ => &[
                            "tripline.privilege.requested.real_id",
                            "tripline.privilege.requested.effective_id",
                            "tripline.privilege.requested.saved_id",
                        ],
                    };
                    for (i, n) in names.iter().enumerate() {
                        // -1 means "unchanged".
                        let id = x.args[i] as u32;
                        a.push((n, if id == u32::MAX { -1i64 } else { i64::from(id) }.into()));
                    }
                    if let Some(e) = x.new_euid(p.euid).filter(|_| x.succeeded()) {
                        a.push(("tripline.privilege.new_user.id", e.into()));
                    }
                }
                crate::event::EventKind::Ptrace => {
                    a.push(("tripline.ptrace.request", (x.args[0] as i64).into()));
                    a.push((
                        "tripline.ptrace.target_pid",
                        (x.args[1] as i32 as i64).into(),
                    ));
                }
                crate::event::EventKind::BpfLoad => {
                    a.push(("tripline.bpf.command", (x.args[0] as i64).into()))
                }
                crate::event::EventKind::SignalSelf => {
                    a.push((
                        "tripline.signal.target_pid",
                        (x.args[0] as i32 as i64).into(),
                    ));
                    let sig = if x.syscall == "tgkill" {
                        x.args[2]
                    } else {
                        x.args[1]
                    };
                    a.push(("tripline.signal.number", (sig as i64).into()));
                }
                _ => {
                    if let Some(n) = &x.name {
                        a.push(("tripline.syscall.target", n.clone().into()));
                    }
                    if let Some(n) = &x.name2 {
                        a.push(("tripline.syscall.source", n.clone().into()));
                    }
                }
            }
        }
        EventData::Net(n) => {
            a.push(("network.transport", n.transport.as_str().into()));
            a.push((
                "network.type",
                if n.local.is_ipv6() { "ipv6" } else { "ipv4" }.into(),
            ));
            a.push(("network.local.address", n.local.ip().to_string().into()));
            a.push(("network.local.port", n.local.port().into()));
            if ev.kind != crate::event::EventKind::Listen {
                a.push(("network.peer.address", n.peer.ip().to_string().into()));
                a.push(("network.peer.port", n.peer.port().into()));
            }
            a.push(("tripline.network.result", n.result.into()));
            if n.result < 0 {
                a.push(("error.type", errno_name(-n.result).into()));
            }
        }
    }
    if ev.wire_flags & (tripline_common::flags::READ_ERROR | tripline_common::flags::NO_OFFSETS)
        != 0
    {
        a.push(("tripline.event.incomplete", true.into()));
    }
    a
}

fn summary(ev: &Event) -> String {
    let who = format!(
        "{} (pid {}, uid {})",
        ev.process.exe_name(),
        ev.process.pid,
        ev.process.euid
    );
    match &ev.data {
        EventData::Exec { .. } => format!("{who} executed {}", ev.process.exe),
        EventData::Fork { child_pid, .. } => format!("{who} forked pid {child_pid}"),
        EventData::Exit { status } => format!("{who} exited with status {status}"),
        EventData::Sys(x) => {
            let r = if x.result < 0 {
                format!(" (failed: {})", errno_name(-x.result))
            } else {
                String::new()
            };
            format!(
                "{who} called {}{}{r}",
                x.syscall,
                x.name.as_ref().map(|n| format!(" {n}")).unwrap_or_default()
            )
        }
        EventData::File(f) => {
            let verb = match ev.kind {
                crate::event::EventKind::FileUnlink => "deleted",
                crate::event::EventKind::FileRename => "renamed",
                crate::event::EventKind::FileChmod => "changed the mode of",
                crate::event::EventKind::FileChown => "changed the owner of",
                crate::event::EventKind::FileLink => "linked",
                _ => "opened for writing",
            };
            let to = f
                .new_path
                .as_ref()
                .map(|p| format!(" -> {p}"))
                .unwrap_or_default();
            let failed = if f.result < 0 {
                format!(" (failed: {})", errno_name(-f.result))
            } else {
                String::new()
            };
            format!("{who} {verb} {}{to}{failed}", f.path)
        }
        EventData::Net(n) => match ev.kind {
            crate::event::EventKind::Listen => format!("{who} listens on {}", n.local),
            crate::event::EventKind::Accept => format!("{who} accepted {} on {}", n.peer, n.local),
            _ if n.result < 0 => format!(
                "{who} failed to connect to {} ({})",
                n.peer,
                errno_name(-n.result)
            ),
            _ => format!("{who} connected to {}", n.peer),
        },
    }
}

pub fn event_record(ev: &Event) -> Record {
    let (severity_number, severity_text) = severity_number(None);
    Record {
        event_name: ev.kind.event_name(),
        time: ev.time,
        severity_number,
        severity_text,
        body: summary(ev),
        attributes: event_attributes(ev),
    }
}

pub fn finding_record(f: &Finding) -> Record {
    let (severity_number, severity_text) = severity_number(Some(f.severity));
    let mut a: Vec<(&'static str, Value)> = vec![
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
            a.push(("security_rule.reference", techniques.join(",").into()));
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
            a.push(("security_rule.reference", "T1562.001".into()));
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
    if !matches!(f.source, FindingSource::Tamper { .. }) {
        a.extend(event_attributes(&f.event));
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

/// Linux errno names for the results tripline reports.
pub fn errno_name(errno: i64) -> String {
    let name = match errno {
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        9 => "EBADF",
        11 => "EAGAIN",
        13 => "EACCES",
        22 => "EINVAL",
        24 => "EMFILE",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        101 => "ENETUNREACH",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}

/// RFC 3339 with nanoseconds, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
