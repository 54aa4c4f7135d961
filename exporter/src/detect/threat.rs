//! The threat level: one number (0..100) for "how worried should we be right now".
//!
//! `score = min(100, Σ weight(severity) · e^(−age/τ) + 5 · (distinct sources − 1))` over the unique
//! findings of the last `window`, with weights info 1, low 3, medium 8, high 20, critical 40 and
//! τ = 15 minutes. "Sources" are rules and models: many different signals at once score higher than one
//! signal repeating. Repeats suppressed as duplicates do not count.
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use crate::model::Severity;

const TAU_SECS: f64 = 15.0 * 60.0;
const WINDOW: Duration = Duration::from_secs(3600);
const MAX_TRACKED: usize = 4096;

pub fn weight(s: Severity) -> f64 {
    match s {
        Severity::info => 1.0,
        Severity::low => 3.0,
        Severity::medium => 8.0,
        Severity::high => 20.0,
        Severity::critical => 40.0,
    }
}

#[derive(Debug, Default)]
pub struct ThreatLevel {
    recent: VecDeque<(SystemTime, Severity, String)>,
}

impl ThreatLevel {
    pub fn record(&mut self, at: SystemTime, severity: Severity, source: &str) {
        if self.recent.len() >= MAX_TRACKED {
            self.recent.pop_front();
        }
        self.recent.push_back((at, severity, source.to_string()));
    }

    pub fn score(&mut self, now: SystemTime) -> f64 {
        while let Some((t, _, _)) = self.recent.front() {
            if now.duration_since(*t).unwrap_or_default() > WINDOW {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        let mut sum = 0.0;
        let mut sources = HashSet::new();
        for (t, s, src) in &self.recent {
            let age = now.duration_since(*t).unwrap_or_default().as_secs_f64();
            sum += weight(*s) * (-age / TAU_SECS).exp();
            sources.insert(src.as_str());
        }
        let variety = 5.0 * (sources.len().saturating_sub(1)) as f64;
        (sum + variety).min(100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_with_severity_and_variety_and_decays() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut t = ThreatLevel::default();
        assert_eq!(t.score(t0), 0.0);
        t.record(t0, Severity::high, "rule:a");
        let one = t.score(t0);
        assert!((one - 20.0).abs() < 1e-9);
        t.record(t0, Severity::medium, "model:b");
        let two = t.score(t0);
        assert!((two - (28.0 + 5.0)).abs() < 1e-9, "variety adds 5: {two}");
        let later = t.score(t0 + Duration::from_secs(900));
        assert!(
            (later - (28.0 / std::f64::consts::E + 5.0)).abs() < 1e-6,
            "decays with tau = 15 min: {later}"
        );
        assert_eq!(
            t.score(t0 + Duration::from_secs(7200)),
            0.0,
            "forgotten after the window"
        );
        for i in 0..20 {
            t.record(t0, Severity::critical, &format!("rule:{i}"));
        }
        assert_eq!(t.score(t0), 100.0, "capped");
    }
}
