//! The one log schema, shared by the JSON-lines and OTLP sinks and the API: a record is an event name,
//! a time, a severity, a one-line body and typed attributes. Each family module says which attributes its
//! kinds carry; `sinks::render` builds records and their JSON form.
//!
//! Attribute names follow OpenTelemetry semantic conventions (`process.*`, `network.*`, `file.*`,
//! `security_rule.*`); tripline's own additions live under `tripline.*`. Integers stay integers and argv
//! is a string array.
use std::time::SystemTime;

use super::Severity;

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
impl From<super::Text> for Value {
    fn from(v: super::Text) -> Value {
        Value::Str(v.into())
    }
}
impl From<super::Args> for Value {
    fn from(v: super::Args) -> Value {
        Value::StrArray(v.into())
    }
}
impl From<Vec<super::Text>> for Value {
    fn from(v: Vec<super::Text>) -> Value {
        Value::StrArray(v.into_iter().map(String::from).collect())
    }
}

/// OpenTelemetry severity numbers: INFO for events; WARN/ERROR/FATAL for findings.
pub fn severity_number(s: Option<Severity>) -> (i32, &'static str) {
    s.unwrap_or(Severity::info).otel()
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

/// Attributes under construction.
pub type Attrs = Vec<(&'static str, Value)>;

impl Record {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
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
