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
pub fn parse_since(s: &str) -> Result<SystemTime, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
        }
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
    }
}
