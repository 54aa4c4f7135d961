//! Recent findings for `GET /api/v1/findings`, in a bounded ring (oldest dropped first). Kept as data;
//! the API renders them.
use std::collections::VecDeque;
use std::time::SystemTime;

/// A bounded ring of `T` (the engine keeps `Arc<Finding>`).
#[derive(Debug)]
pub struct FindingsRing<T> {
    items: VecDeque<(SystemTime, T)>,
    capacity: usize,
}

impl<T: Clone> FindingsRing<T> {
    pub fn new(capacity: usize) -> FindingsRing<T> {
        FindingsRing {
            items: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, at: SystemTime, record: T) {
        if self.items.len() >= self.capacity {
            self.items.pop_front();
        }
        self.items.push_back((at, record));
    }

    /// Findings at or after `since`, oldest first.
    pub fn since(&self, since: SystemTime) -> Vec<T> {
        self.items
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Parses `since`: RFC 3339 (`2026-11-22T10:00:00Z`) or unix seconds (`1795000000`, `1795000000.5`).
/// Unix seconds are bounded to year 9999; anything outside is an error, never an overflow.
pub fn parse_since(s: &str) -> Result<SystemTime, String> {
    const MAX_UNIX: f64 = 253_402_300_799.0; // 9999-12-31T23:59:59Z
    if s.len() > 64 {
        return Err("since: at most 64 characters".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        if !(secs.is_finite() && (0.0..=MAX_UNIX).contains(&secs)) {
            return Err(format!(
                "since={s:?}: unix seconds must be between 0 and {MAX_UNIX} (year 9999)"
            ));
        }
        return std::time::Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
            .ok_or_else(|| format!("since={s:?}: out of range"));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| format!("since={s:?}: use RFC 3339 (2026-11-22T10:00:00Z) or unix seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bounded_and_filtered() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let mut r = FindingsRing::new(2);
        for i in 0..3 {
            r.push(t0 + Duration::from_secs(i), serde_json::json!(i));
        }
        assert_eq!(
            r.since(SystemTime::UNIX_EPOCH),
            vec![serde_json::json!(1), serde_json::json!(2)]
        );
        assert_eq!(
            r.since(t0 + Duration::from_secs(2)),
            vec![serde_json::json!(2)]
        );
    }

    #[test]
    fn since_formats() {
        assert_eq!(
            parse_since("100").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(100)
        );
        assert!(parse_since("2026-11-22T10:00:00Z").is_ok());
        assert!(parse_since("yesterday").unwrap_err().contains("RFC 3339"));
        // These panicked the handler (issue 12).
        for bad in [
            "1e20",
            "1e19",
            "1e300",
            "-1",
            "NaN",
            "inf",
            "-0.5e10",
            "253402300800",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
        assert!(parse_since("253402300799").is_ok());
        assert!(parse_since(&"9".repeat(100)).is_err());
    }
}
