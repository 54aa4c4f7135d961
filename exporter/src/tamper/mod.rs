//! Tamper evidence: what a root attacker who wants tripline blind leaves behind.
//!
//! - Kernel counters are monotonic: a per-CPU counter map value that goes down was rewritten
//!   (`bpftool map update`, a raw `bpf(BPF_MAP_UPDATE_ELEM)`) → `counter_decreased`.
//! - Our own programs, links and maps are verified periodically by id and tag (BPF_*_GET_NEXT_ID):
//!   `program_missing`, `program_changed`, `link_missing`, `map_missing`.
//! - A state marker in the state directory says "running" while tripline runs and "stopped" after a
//!   clean stop; found "running" at start, the previous run ended uncleanly (kill -9, OOM, crash, power
//!   loss) → `unclean_stop`, with the unmonitored gap since its last heartbeat.
//!
//! Each is a finding (`tripline.tamper.detected`, rule `tamper_<reason>`) and increments
//! `tripline_tamper_detected_total{reason}`. `tripline_last_event_timestamp_seconds` and
//! `tripline_heartbeat_timestamp_seconds` let Alertmanager page on a silent agent.
pub mod marker;

use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Why tamper was detected (closed set; the `reason` label).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Reason {
    counter_decreased,
    program_missing,
    program_changed,
    link_missing,
    map_missing,
    unclean_stop,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::counter_decreased,
        Reason::program_missing,
        Reason::program_changed,
        Reason::link_missing,
        Reason::map_missing,
        Reason::unclean_stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::counter_decreased => "counter_decreased",
            Reason::program_missing => "program_missing",
            Reason::program_changed => "program_changed",
            Reason::link_missing => "link_missing",
            Reason::map_missing => "map_missing",
            Reason::unclean_stop => "unclean_stop",
        }
    }

    pub fn severity(self) -> crate::model::Severity {
        use crate::model::Severity;
        match self {
            Reason::unclean_stop => Severity::medium,
            Reason::counter_decreased => Severity::high,
            _ => Severity::critical,
        }
    }
}

/// One piece of tamper evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Tamper {
    pub reason: Reason,
    /// What was seen, for the finding's body (no secrets: map/program names and numbers).
    pub detail: String,
    /// `unclean_stop`: seconds without monitoring (last heartbeat → this start).
    pub gap: Option<Duration>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: Reason,
}

#[derive(Clone, Default)]
pub struct TamperMetrics {
    pub detected: Family<ReasonLabels, Counter>,
    pub last_event: Gauge<f64, AtomicU64>,
    pub heartbeat: Gauge<f64, AtomicU64>,
    pub last_check: Gauge<f64, AtomicU64>,
}

impl TamperMetrics {
    pub fn new(registry: &mut Registry) -> TamperMetrics {
        let m = TamperMetrics::default();
        let r = registry.sub_registry_with_prefix("tripline");
        r.register(
            "tamper_detected",
            "Tamper evidence, by reason: counter_decreased, program_missing, program_changed, link_missing, map_missing, unclean_stop",
            m.detected.clone(),
        );
        r.register(
            "last_event_timestamp_seconds",
            "Unix time at which the sensor last received an event from the kernel",
            m.last_event.clone(),
        );
        r.register(
            "heartbeat_timestamp_seconds",
            "Unix time of the detection loop's last tick (advances every second while the pipeline runs)",
            m.heartbeat.clone(),
        );
        r.register(
            "tamper_check_timestamp_seconds",
            "Unix time of the last integrity check of tripline's own programs, links, maps and counters",
            m.last_check.clone(),
        );
        for reason in Reason::ALL {
            drop(m.detected.get_or_create(&ReasonLabels { reason: *reason }));
        }
        m
    }

    pub fn count(&self, t: &Tamper) {
        self.detected
            .get_or_create(&ReasonLabels { reason: t.reason })
            .inc();
    }
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
