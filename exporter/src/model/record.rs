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
    /// A point in time, written as RFC 3339 text (a string attribute) where it is rendered.
    Time(SystemTime),
}

/// What a value is, whatever form it is stored in: what renderers and comparisons look at.
#[derive(Clone, Copy)]
pub enum View<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Strs(Strs<'a>),
    /// RFC 3339 text when rendered ([`rfc3339`]); a string to whoever reads the value.
    Time(SystemTime),
}

impl<'a> Value<'a> {
    #[inline]
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
            Value::Time(t) => View::Time(*t),
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
            Value::Time(t) => Value::Time(t),
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
            (View::Time(a), View::Time(b)) => a == b,
            (View::Time(t), View::Str(s)) | (View::Str(s), View::Time(t)) => rfc3339(t) == s,
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
impl From<SystemTime> for Value<'_> {
    fn from(t: SystemTime) -> Self {
        Value::Time(t)
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

/// Where a family writes an event's attributes, in schema order: a record's list ([`Attrs`], for OTLP,
/// findings and the API) or straight into a rendered form (the JSON-lines writer's line, which so needs
/// no list, and frees nothing but the few values that had to be built). `push` has `Vec::push`'s shape
/// so the families write the same code for both.
pub trait AttrSink<'a> {
    fn push(&mut self, attribute: (&'static str, Value<'a>));
}

impl<'a> AttrSink<'a> for Attrs<'a> {
    fn push(&mut self, attribute: (&'static str, Value<'a>)) {
        Vec::push(self, attribute);
    }
}

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
    let mut out = Vec::with_capacity(30);
    rfc3339_into(t, &mut out);
    // Only ASCII digits and punctuation were written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`rfc3339`] appended to `out`: every event line carries two timestamps (the event's and the
/// process's start), so times from 1970 to 9999 are written here directly from the day count (the
/// civil-from-days conversion of H. Hinnant's date algorithms), the same text as `time`'s formatter
/// (a test compares them over the whole range); others go through `time`.
pub fn rfc3339_into(t: SystemTime, out: &mut Vec<u8>) {
    let d = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) if d.as_secs() < YEAR_10000 => d,
        _ => return out.extend_from_slice(rfc3339_slow(t).as_bytes()),
    };
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let second_of_day = secs % 86_400;
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    // Two digits at a time: `n` below 100 at `b[at..at + 2]`.
    let mut pair = |at: usize, n: u64| {
        b[at] = b'0' + (n / 10) as u8;
        b[at + 1] = b'0' + (n % 10) as u8;
    };
    pair(0, year / 100);
    pair(2, year % 100);
    pair(5, month);
    pair(8, day);
    pair(11, second_of_day / 3600);
    pair(14, second_of_day / 60 % 60);
    pair(17, second_of_day % 60);
    let nanos = d.subsec_nanos();
    let len = if nanos == 0 {
        19
    } else {
        let n = u64::from(nanos);
        pair(20, n / 10_000_000);
        pair(22, n / 100_000 % 100);
        pair(24, n / 1_000 % 100);
        pair(26, n / 10 % 100);
        b[28] = b'0' + (n % 10) as u8;
        // Nine digits without their trailing zeros (at most eight: the fraction is not 0).
        let (mut n, mut len) = (nanos, 29);
        while n % 10 == 0 {
            n /= 10;
            len -= 1;
        }
        len
    };
    b[len] = b'Z';
    out.extend_from_slice(&b[..=len]);
}
const YEAR_10000: u64 = 253_402_300_800;

/// Year, month (1–12) and day (1–31) of a day counted from 1970-01-01 (proleptic Gregorian): H. Hinnant's
/// `civil_from_days`, for days on or after the epoch.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01, in 400-year eras of 146,097 days; a year starts in March.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

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

    /// The direct conversion writes what `time` writes: every fraction shape, on days spread over the
    /// whole range from 1970 to 9999 (leap days, century years, the first and last second of each).
    #[test]
    fn rfc3339_matches_the_formatter_over_the_range() {
        let check = |secs: u64, nanos: u32| {
            let t = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
            assert_eq!(rfc3339(t), super::rfc3339_slow(t), "{secs}.{nanos:09}");
        };
        let fractions = [
            0u32,
            1,
            10,
            20,
            100_000,
            7_000_000,
            123_456_789,
            500_000_000,
            999_999_999,
        ];
        // Each day's first and last second, for days spaced a prime apart over the range, plus known edges:
        // 1970-01-01, 1972-02-29, 2000-02-29, 2100-03-01, 9999-12-31.
        let mut days: Vec<u64> = (0..super::YEAR_10000 / 86_400).step_by(997).collect();
        days.extend([0, 789, 11_016, 47_541, 2_932_896]);
        for (i, day) in days.iter().enumerate() {
            check(day * 86_400, fractions[i % fractions.len()]);
            check(day * 86_400 + 86_399, fractions[(i + 3) % fractions.len()]);
        }
        for nanos in fractions {
            check(1_765_015_200, nanos);
        }
    }
}
