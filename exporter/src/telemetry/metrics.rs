//! The metrics registry: every metric family and every label set in one place.
//!
//! Every label value is a type: `kind`, `stage`, `reason`, `severity`, `model`, `state`, `signal`, `result`
//! are enums (closed by code); `probe`, `rule` and `pattern` are [`Bounded`] values that only the owner of
//! the closed set (attach table, loaded policy, redaction config) makes. Label sets are pre-initialised at
//! 0 so `rate()` works from the first scrape. No pid, path, argv, address or user name is ever a label.
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::families::DecodeReason;
use crate::model::{EventKind, Model, Severity};

/// Declares a closed label value set: an enum whose variants are the label values, with `ALL`.
macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $( $(#[$vm:meta])* $variant:ident ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
        #[allow(non_camel_case_types)]
        pub enum $name { $( $(#[$vm])* $variant, )* }
        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];
        }
    };
}

/// An event kind as a label value; `None` is `unknown` (a record whose header could not be read).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct KindLabel(pub Option<EventKind>);

impl EncodeLabelValue for KindLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(self.0.map(EventKind::as_str).unwrap_or("unknown"))
    }
}

impl EncodeLabelValue for Model {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(self.as_str())
    }
}

/// A label value from a set closed by code or by the loaded policy/configuration (probe names from the
/// attach table, rule ids from the policy, redaction pattern names): only the owner of that set makes one.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bounded(std::sync::Arc<str>);

impl Bounded {
    /// For the module that owns the closed set (attach table, policy, redaction config).
    pub fn from_closed_set(s: &str) -> Bounded {
        Bounded(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl EncodeLabelValue for Bounded {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: KindLabel,
}

label_enum! {
    /// Where an event can be lost.
    Stage {
        /// The kernel ring buffer had no room (counted by the probes, read at scrape time).
        kernel,
        /// Bytes from the ring buffer could not be decoded.
        decode,
        /// The queue between the sensor and detection/sinks was full.
        pipeline,
        /// The JSON-lines writer's queue was full or the write failed.
        jsonl,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: Stage,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecodeLabels {
    /// An event kind, or `unknown` when the header itself could not be read.
    pub kind: KindLabel,
    pub reason: DecodeReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe: Bounded,
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: Bounded,
    pub severity: Severity,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabels {
    pub severity: Severity,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelSeverityLabels {
    pub model: Model,
    pub severity: Severity,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: Model,
}

label_enum! {
    /// Which part of a baseline model a key is in.
    KeyState { learned, seen_in_monitor, accepted }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelStateLabels {
    pub model: Model,
    pub state: KeyState,
}

label_enum! {
    /// What raised a finding occurrence.
    FindingReason { rule, baseline, tamper }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: FindingReason,
}

label_enum! {
    /// Why a finding was not reported as new.
    SuppressReason {
        /// The same (rule or model, subject) inside the suppression window.
        duplicate,
        /// An info or low rule match the baseline learned or accepted (`rule_match` model).
        learned,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SuppressedLabels {
    pub reason: SuppressReason,
}

label_enum! { OtlpSignal { logs } }
label_enum! {
    /// exported, dropped = local queue full, failed = export error.
    OtlpResult { exported, dropped, failed }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OtlpLabels {
    pub signal: OtlpSignal,
    pub result: OtlpResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PatternLabels {
    pub pattern: Bounded,
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
    pub findings: Family<SeverityLabels, Counter>,
    pub baseline_keys: Family<ModelStateLabels, Gauge>,
    pub baseline_learning: Family<ModelLabels, Gauge>,
    pub baseline_info: Family<BaselineInfoLabels, Gauge>,
    pub threat_level: Gauge<f64, AtomicU64>,
    pub findings_suppressed: Family<SuppressedLabels, Counter>,
    // OTLP and redaction.
    pub otlp_records: Family<OtlpLabels, Counter>,
    pub otlp_queue_length: Gauge,
    pub redactions: Family<PatternLabels, Counter>,
    // Hardening (issue 12).
    pub baseline_write_errors: Counter,
}

impl Metrics {
    /// Registers every family under `tripline_` and pre-initialises the closed label sets.
    // Long on purpose: one registration per family, in one reviewable list with its help text.
    pub fn new(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("tripline");
        r.register(
            "baseline_write_errors",
            "Failed writes of the baseline state file (the model in memory is kept; see the log for why)",
            m.baseline_write_errors.clone(),
        );
        r.register(
            "decode_errors",
            "Ring-buffer records that could not be decoded, by kind and reason",
            m.decode_errors.clone(),
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
            "findings",
            "Findings reported, by severity: each is every rule match and new baseline key of one process (and its children) within the correlation window",
            m.findings.clone(),
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
            drop(m.events.get_or_create(&KindLabels {
                kind: KindLabel(Some(*k)),
            }));
        }
        for s in Stage::ALL {
            drop(m.events_lost.get_or_create(&StageLabels { stage: *s }));
        }
        for k in EventKind::ALL.iter().map(|k| Some(*k)).chain([None]) {
            for reason in DecodeReason::ALL {
                drop(m.decode_errors.get_or_create(&DecodeLabels {
                    kind: KindLabel(k),
                    reason: *reason,
                }));
            }
        }
        for result in OtlpResult::ALL {
            drop(m.otlp_records.get_or_create(&OtlpLabels {
                signal: OtlpSignal::logs,
                result: *result,
            }));
        }
        for severity in Severity::ALL {
            drop(m.findings.get_or_create(&SeverityLabels {
                severity: *severity,
            }));
        }
        for reason in FindingReason::ALL {
            drop(
                m.finding_occurrences
                    .get_or_create(&ReasonLabels { reason: *reason }),
            );
        }
        for reason in SuppressReason::ALL {
            drop(
                m.findings_suppressed
                    .get_or_create(&SuppressedLabels { reason: *reason }),
            );
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

    /// Families fed by the kernel's counters: the sensor refreshes them at scrape time and encodes them
    /// from its own `Collector` (`probes::SensorCollector`), so they are not registered here.
    pub fn encode_kernel_fed(
        &self,
        encoder: &mut DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let fed: [(&str, &str, &dyn EncodeMetric); 5] = [
            ("events", "Events seen by the kernel probes, by kind (read from in-kernel per-CPU counters at scrape time; includes events later lost).", &self.events),
            ("events_lost", "Events lost, by pipeline stage: kernel = ring buffer full, decode = undecodable record, pipeline/jsonl = bounded queue full.", &self.events_lost),
            ("kernel_read_errors", "Kernel memory reads that failed while a probe built an event (the event was sent with fields missing).", &self.kernel_read_errors),
            ("connect_pending_full", "Connects whose SYN_SENT state could not be parked until the syscall returned (map full); such connects are not reported.", &self.pending_connect_full),
            ("file_events_filtered", "File operations outside the watched paths, dropped by the in-kernel filter or after resolving a relative path.", &self.file_events_filtered),
        ];
        // Help texts end with '.', as the registry writes them.
        for (name, help, metric) in fed {
            let e = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
            metric.encode(e)?;
        }
        Ok(())
    }

    pub fn lost(&self, stage: Stage) -> Counter {
        self.events_lost
            .get_or_create(&StageLabels { stage })
            .clone()
    }
}
