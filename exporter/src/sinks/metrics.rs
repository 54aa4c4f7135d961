//! The metrics registry: every metric family and every label set in one place.
//!
//! Labels are closed sets. `kind`, `stage`, `reason`, `severity`, `signal`, `result` are enums; `probe`,
//! `rule`, `model` and `pattern` are strings bounded by code or by the loaded policy/config, and are
//! pre-initialised at 0 so `rate()` works from the first scrape. No pid, path, argv, address or user
//! name is ever a label.
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::event::EventKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// Where an event can be lost.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Stage {
    /// The kernel ring buffer had no room (counted by the probes, read at scrape time).
    kernel,
    /// Bytes from the ring buffer could not be decoded.
    decode,
    /// The queue between the sensor and detection/sinks was full.
    pipeline,
    /// The JSON-lines writer's queue was full or the write failed.
    jsonl,
}

impl Stage {
    pub const ALL: &'static [Stage] =
        &[Stage::kernel, Stage::decode, Stage::pipeline, Stage::jsonl];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: Stage,
}

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DecodeReason {
    short,
    version,
    unknown_kind,
    length,
}

impl DecodeReason {
    pub const ALL: &'static [DecodeReason] = &[
        DecodeReason::short,
        DecodeReason::version,
        DecodeReason::unknown_kind,
        DecodeReason::length,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecodeLabels {
    /// An event kind, or `unknown` when the header itself could not be read.
    pub kind: &'static str,
    pub reason: DecodeReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe: String,
}

/// `tripline_baseline_info`: one series, the version of the loaded baseline.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BaselineInfoLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub revision: String,
    pub build_date: String,
    pub rustc_version: String,
    pub wire_version: String,
}

/// Finding severities, lowest first.
#[derive(
    Clone,
    Copy,
    Debug,
    Hash,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    EncodeLabelValue,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[allow(non_camel_case_types)]
pub enum Severity {
    info,
    low,
    medium,
    high,
    critical,
}

impl Severity {
    pub const ALL: &'static [Severity] = &[
        Severity::info,
        Severity::low,
        Severity::medium,
        Severity::high,
        Severity::critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::info => "info",
            Severity::low => "low",
            Severity::medium => "medium",
            Severity::high => "high",
            Severity::critical => "critical",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
    pub severity: Severity,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelSeverityLabels {
    pub model: String,
    pub severity: Severity,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelStateLabels {
    pub model: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OtlpLabels {
    pub signal: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PatternLabels {
    pub pattern: String,
}

/// All of tripline's own metric families. Cheap to clone (every family is an `Arc` inside).
#[derive(Clone, Default)]
pub struct Metrics {
    pub events: Family<KindLabels, Counter>,
    pub events_lost: Family<StageLabels, Counter>,
    pub decode_errors: Family<DecodeLabels, Counter>,
    pub kernel_read_errors: Counter,
    pub pending_connect_full: Counter,
    pub file_events_filtered: Counter,
    pub process_tree_processes: Gauge,
    pub process_tree_evictions: Counter,
    pub probe_attached: Family<ProbeLabels, Gauge>,
    pub build_info: Family<BuildLabels, Gauge>,
    pub pipeline_queue_length: Gauge,
    // Detection.
    pub rule_matches: Family<RuleLabels, Counter>,
    pub anomalies: Family<ModelSeverityLabels, Counter>,
    pub finding_occurrences: Family<ReasonLabels, Counter>,
    pub baseline_keys: Family<ModelStateLabels, Gauge>,
    pub baseline_learning: Family<ModelLabels, Gauge>,
    pub baseline_info: Family<BaselineInfoLabels, Gauge>,
    pub threat_level: Gauge<f64, AtomicU64>,
    pub findings_suppressed: Family<ReasonLabels, Counter>,
    // OTLP and redaction.
    pub otlp_records: Family<OtlpLabels, Counter>,
    pub otlp_queue_length: Gauge,
    pub redactions: Family<PatternLabels, Counter>,
}

impl Metrics {
    /// Registers every family under `tripline_` and pre-initialises the closed label sets.
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("tripline");
        r.register(
            "events",
            "Events seen by the kernel probes, by kind (read from in-kernel per-CPU counters at scrape time; includes events later lost)",
            m.events.clone(),
        );
        r.register(
            "events_lost",
            "Events lost, by pipeline stage: kernel = ring buffer full, decode = undecodable record, pipeline/jsonl = bounded queue full",
            m.events_lost.clone(),
        );
        r.register(
            "decode_errors",
            "Ring-buffer records that could not be decoded, by kind and reason",
            m.decode_errors.clone(),
        );
        r.register(
            "kernel_read_errors",
            "Kernel memory reads that failed while a probe built an event (the event was sent with fields missing)",
            m.kernel_read_errors.clone(),
        );
        r.register(
            "connect_pending_full",
            "Connects whose SYN_SENT state could not be parked until the syscall returned (map full); such connects are not reported",
            m.pending_connect_full.clone(),
        );
        r.register(
            "file_events_filtered",
            "File operations outside the watched paths, dropped by the in-kernel filter or after resolving a relative path",
            m.file_events_filtered.clone(),
        );
        r.register(
            "process_tree_processes",
            "Processes currently tracked by the process tree",
            m.process_tree_processes.clone(),
        );
        r.register(
            "process_tree_evictions",
            "Processes evicted from the process tree because it reached its size bound",
            m.process_tree_evictions.clone(),
        );
        r.register(
            "probe_attached",
            "1 if the probe is loaded and attached, 0 if it could not be (see the startup log for why)",
            m.probe_attached.clone(),
        );
        r.register(
            "build_info",
            "A metric with a constant '1' value labelled by the tripline version, git revision, build date, rustc version and wire format version",
            m.build_info.clone(),
        );
        r.register(
            "pipeline_queue_length",
            "Events waiting in the queue between the sensor and detection/sinks",
            m.pipeline_queue_length.clone(),
        );
        r.register(
            "rule_matches",
            "Policy rule matches (unique findings after deduplication), by rule and severity",
            m.rule_matches.clone(),
        );
        r.register(
            "anomalies",
            "Baseline anomalies (behaviour not in the learned model), by model and severity",
            m.anomalies.clone(),
        );
        r.register(
            "finding_occurrences",
            "Every occurrence of a finding, including repeats deduplicated inside the suppression window, by reason (rule or baseline)",
            m.finding_occurrences.clone(),
        );
        r.register(
            "baseline_keys",
            "Keys in each baseline model, by state (learned, seen_in_monitor, accepted)",
            m.baseline_keys.clone(),
        );
        r.register(
            "baseline_learning",
            "1 while the baseline model is learning, 0 while it is monitoring",
            m.baseline_learning.clone(),
        );
        r.register(
            "baseline_info",
            "A metric with a constant '1' value labelled by the version of the loaded baseline (provenance.version; unversioned when the file has none, none when no baseline file was loaded)",
            m.baseline_info.clone(),
        );
        r.register(
            "threat_level",
            "Threat score 0..100 from the severity and variety of recent findings, decaying over time (docs/metrics.md)",
            m.threat_level.clone(),
        );
        r.register(
            "findings_suppressed",
            "Findings not reported as new, by reason (duplicate within the suppression window, rule exception)",
            m.findings_suppressed.clone(),
        );
        r.register(
            "otlp_records",
            "OTLP log records by signal and result (exported, dropped = local queue full, failed = export error)",
            m.otlp_records.clone(),
        );
        r.register(
            "otlp_queue_length",
            "Records waiting in the OTLP export queue",
            m.otlp_queue_length.clone(),
        );
        r.register(
            "redactions",
            "Secrets redacted from command lines before any sink saw them, by pattern",
            m.redactions.clone(),
        );

        for k in EventKind::ALL {
            drop(m.events.get_or_create(&KindLabels { kind: k.as_str() }));
        }
        for s in Stage::ALL {
            drop(m.events_lost.get_or_create(&StageLabels { stage: *s }));
        }
        for k in EventKind::ALL.iter().map(|k| k.as_str()).chain(["unknown"]) {
            for reason in DecodeReason::ALL {
                drop(m.decode_errors.get_or_create(&DecodeLabels {
                    kind: k,
                    reason: *reason,
                }));
            }
        }
        for result in ["exported", "dropped", "failed"] {
            drop(m.otlp_records.get_or_create(&OtlpLabels {
                signal: "logs",
                result,
            }));
        }
        m.build_info
            .get_or_create(&BuildLabels {
                version: crate::build_info::VERSION.to_string(),
                revision: crate::build_info::REVISION.to_string(),
                build_date: crate::build_info::BUILD_DATE.to_string(),
                rustc_version: crate::build_info::RUSTC_VERSION.to_string(),
                wire_version: tripline_common::WIRE_VERSION.to_string(),
            })
            .set(1);
        m
    }

    pub fn lost(&self, stage: Stage) -> Counter {
        self.events_lost
            .get_or_create(&StageLabels { stage })
            .clone()
    }
}
