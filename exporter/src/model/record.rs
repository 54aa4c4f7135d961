//! The one log schema, shared by the JSON-lines and OTLP sinks and the API: a record is an event name,
//! a time, a severity, a one-line body and typed attributes. Each family module says which attributes its
//! kinds carry; `sinks::render` builds records and their JSON form.
//!
//! Attribute names follow OpenTelemetry semantic conventions (`process.*`, `network.*`, `file.*`,
//! `security_rule.*`); tripline's own additions live under `tripline.*`. Integers stay integers and argv
//! is a string array.
use std::time::SystemTime;

use super::Severity;

/// An attribute's value. Strings come in several forms so that rendering a record copies nothing it can
/// share or borrow: owned (`Str`, `StrArray`), shared with the process tree (`Text`, `Texts`: a reference
/// count) and borrowed for the record's lifetime `'a` (`Ref`, `Strs`: from the event being rendered, or
/// static names). They compare by content, whatever the form. A record that must outlive the event it was
/// rendered from (queued for another thread) is made [`Record::into_owned`].
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Str(String),
    Text(super::Text),
    Ref(&'a str),
    Int(i64),
    Bool(bool),
    StrArray(Vec<String>),
    Texts(Vec<super::Text>),
    Strs(Strs<'a>),
}

/// What a value is, whatever form it is stored in: what renderers and comparisons look at.
#[derive(Clone, Copy)]
pub enum View<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Strs(Strs<'a>),
}

impl<'a> Value<'a> {
    pub fn view(&self) -> View<'_> {
        match self {
            Value::Str(s) => View::Str(s),
            Value::Text(t) => View::Str(t),
            Value::Ref(s) => View::Str(s),
            Value::Int(i) => View::Int(*i),
            Value::Bool(b) => View::Bool(*b),
            Value::StrArray(a) => View::Strs(Strs::Strings(a)),
            Value::Texts(t) => View::Strs(Strs::Texts(t)),
            Value::Strs(a) => View::Strs(*a),
        }
    }

    /// The value without borrows: borrowed strings copied, shared ones kept shared.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Str(s) => Value::Str(s),
            Value::Text(t) => Value::Text(t),
            Value::Ref(s) => Value::Str(s.to_string()),
            Value::Int(i) => Value::Int(i),
            Value::Bool(b) => Value::Bool(b),
            Value::StrArray(a) => Value::StrArray(a),
            Value::Texts(t) => Value::Texts(t),
            Value::Strs(Strs::Strings(a)) => Value::StrArray(a.to_vec()),
            Value::Strs(Strs::Texts(t)) => Value::Texts(t.to_vec()),
        }
    }
}

/// The strings of an array value, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Strs<'a> {
    Strings(&'a [String]),
    Texts(&'a [super::Text]),
}

impl<'a> Strs<'a> {
    pub fn len(&self) -> usize {
        match self {
            Strs::Strings(a) => a.len(),
            Strs::Texts(a) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(self) -> impl Iterator<Item = &'a str> {
        let (a, b) = match self {
            Strs::Strings(a) => (a, &[][..]),
            Strs::Texts(t) => (&[][..], t),
        };
        a.iter()
            .map(String::as_str)
            .chain(b.iter().map(super::Text::as_str))
    }
}

impl PartialEq for Value<'_> {
    fn eq(&self, other: &Value<'_>) -> bool {
        match (self.view(), other.view()) {
            (View::Str(a), View::Str(b)) => a == b,
            (View::Int(a), View::Int(b)) => a == b,
            (View::Bool(a), View::Bool(b)) => a == b,
            (View::Strs(a), View::Strs(b)) => a.len() == b.len() && a.iter().eq(b.iter()),
            _ => false,
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Value<'a> {
        Value::Ref(s)
    }
}
impl<'a> From<&'a [String]> for Value<'a> {
    fn from(s: &'a [String]) -> Value<'a> {
        Value::Strs(Strs::Strings(s))
    }
}
impl<'a> From<&'a [super::Text]> for Value<'a> {
    fn from(s: &'a [super::Text]) -> Value<'a> {
        Value::Strs(Strs::Texts(s))
    }
}
impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<u16> for Value<'_> {
    fn from(v: u16) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<Vec<String>> for Value<'_> {
    fn from(v: Vec<String>) -> Self {
        Value::StrArray(v)
    }
}
impl From<super::Text> for Value<'_> {
    fn from(v: super::Text) -> Self {
        Value::Text(v)
    }
}
impl From<Vec<super::Text>> for Value<'_> {
    fn from(v: Vec<super::Text>) -> Self {
        Value::Texts(v)
    }
}

/// OpenTelemetry severity numbers: INFO for events; WARN/ERROR/FATAL for findings.
pub fn severity_number(s: Option<Severity>) -> (i32, &'static str) {
    s.unwrap_or(Severity::info).otel()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// `tripline.<domain>.<action>`.
    pub event_name: &'static str,
    /// When it happened (kernel time converted to wall clock).
    pub time: SystemTime,
    pub severity_number: i32,
    pub severity_text: &'static str,
    /// A one-line human summary.
    pub body: String,
    pub attributes: Attrs<'a>,
}

/// Attributes under construction.
pub type Attrs<'a> = Vec<(&'static str, Value<'a>)>;

impl<'a> Record<'a> {
    /// The record without borrows (to queue it for another thread).
    pub fn into_owned(self) -> Record<'static> {
        Record {
            event_name: self.event_name,
            time: self.time,
            severity_number: self.severity_number,
            severity_text: self.severity_text,
            body: self.body,
            attributes: self
                .attributes
                .into_iter()
                .map(|(k, v)| (k, v.into_owned()))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// The Linux errno name of a result (`ECONNREFUSED`, `ENOSYS`), or `errno N` for a number without one.
pub fn errno_name(errno: i64) -> String {
    match i32::try_from(errno).map(nix::errno::Errno::from_raw) {
        Ok(e) if e != nix::errno::Errno::UnknownErrno => format!("{e:?}"),
        _ => format!("errno {errno}"),
    }
}

/// RFC 3339 with nanoseconds, UTC (`2026-12-06T10:00:00.123456789Z`). A time past 9999 (a broken
/// clock) is clamped to the last nanosecond of 9999 and one before year 0 to its start, instead of
/// panicking (`time` converts only years 0 to 9999 without its large-dates feature).
pub fn rfc3339(t: SystemTime) -> String {
    // Events come in bursts within the same seconds: the date and time of day are formatted once per
    // second (a few recent seconds per thread), the fraction per call. Same text as `time`'s.
    const SLOTS: usize = 4;
    thread_local! {
        static RECENT: std::cell::RefCell<[(u64, String); SLOTS]> = Default::default();
    }
    let Ok(d) = t.duration_since(SystemTime::UNIX_EPOCH) else {
        return rfc3339_slow(t);
    };
    let secs = d.as_secs();
    // Second 0 is the empty slots' key; past 9999 `time` cannot format.
    if secs == 0 || secs >= YEAR_10000 {
        return rfc3339_slow(t);
    }
    RECENT.with_borrow_mut(|recent| {
        let slot = &mut recent[secs as usize % SLOTS];
        if slot.0 != secs {
            let mut whole =
                rfc3339_slow(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs));
            whole.pop(); // the 'Z'
            *slot = (secs, whole);
        }
        let mut out = String::with_capacity(slot.1.len() + 11);
        out.push_str(&slot.1);
        let nanos = d.subsec_nanos();
        if nanos != 0 {
            // Nine digits without their trailing zeros.
            let mut len = 9;
            let mut n = nanos;
            while n % 10 == 0 {
                n /= 10;
                len -= 1;
            }
            let mut digits = [b'0'; 9];
            for b in digits[..len].iter_mut().rev() {
                *b = b'0' + (n % 10) as u8;
                n /= 10;
            }
            out.push('.');
            out.push_str(std::str::from_utf8(&digits[..len]).unwrap_or_default());
        }
        out.push('Z');
        out
    })
}

const YEAR_10000: u64 = 253_402_300_800;

/// [`rfc3339`] through `time`'s formatter, for any time.
fn rfc3339_slow(t: SystemTime) -> String {
    let format = |dt: time::OffsetDateTime| {
        dt.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) if d.as_secs() < YEAR_10000 => format(time::OffsetDateTime::from(t)),
        Ok(_) => format(time::OffsetDateTime::from(
            SystemTime::UNIX_EPOCH + std::time::Duration::new(YEAR_10000 - 1, 999_999_999),
        )),
        Err(before) => time::Duration::try_from(before.duration())
            .ok()
            .and_then(|d| time::OffsetDateTime::UNIX_EPOCH.checked_sub(d))
            .map(format)
            .unwrap_or_else(|| "0000-01-01T00:00:00Z".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{errno_name, rfc3339};

    #[test]
    fn errno_names_from_the_c_library_table() {
        assert_eq!(errno_name(111), "ECONNREFUSED");
        assert_eq!(errno_name(38), "ENOSYS");
        assert_eq!(errno_name(8), "ENOEXEC");
        assert_eq!(errno_name(11), "EAGAIN");
        assert_eq!(errno_name(4095), "errno 4095");
        assert_eq!(errno_name(1 << 40), "errno 1099511627776");
    }

    #[test]
    fn rfc3339_in_and_out_of_the_fast_range() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_765_015_200, 123_456_789);
        assert_eq!(rfc3339(t), "2025-12-06T10:00:00.123456789Z");
        let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_015_200);
        assert_eq!(rfc3339(whole), "2025-12-06T10:00:00Z");
        // Before 1970 and past 9999: still a timestamp, no panic.
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(rfc3339(before), "1969-12-31T00:00:00Z");
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800 + 86_400);
        assert_eq!(rfc3339(far), "9999-12-31T23:59:59.999999999Z");
        let ancient = SystemTime::UNIX_EPOCH - Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339(ancient), "0000-01-01T00:00:00Z");
    }

    /// The per-second cache writes what `time` writes, whatever the fraction and however seconds
    /// alternate.
    #[test]
    fn rfc3339_cached_seconds_match_the_formatter() {
        let base = 1_765_015_200u64;
        for (i, nanos) in [
            0u32,
            1,
            10,
            500_000_000,
            123_456_789,
            100_000,
            999_999_999,
            20,
            7_000_000,
            1,
        ]
        .iter()
        .enumerate()
        {
            for secs in [base, base + 1, base + 4, base + 7 * i as u64, 59, 1] {
                let t = SystemTime::UNIX_EPOCH + Duration::new(secs, *nanos);
                assert_eq!(rfc3339(t), super::rfc3339_slow(t), "{secs}.{nanos:09}");
            }
        }
    }
}
