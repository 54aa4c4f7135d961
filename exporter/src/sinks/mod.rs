//! Sinks: where events and findings go as log records (JSON lines, OTLP). Records are rendered (`render`)
//! only for a sink that wants them: a finding once, for every sink; an event by the JSON-lines thread
//! (off the detection thread) and, when OTLP takes events too, once more for OTLP.
pub mod jsonl;
pub mod otlp;
pub mod render;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::enrich::redact;
use crate::model::{Event, EventKind, Finding};
use crate::telemetry::metrics;

/// Which events (besides findings, which always go) a log sink receives.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    Deserialize,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EventLevel {
    /// Findings only.
    #[default]
    None,
    /// Findings and process executions (the classic audit trail).
    Exec,
    /// Findings and every event.
    All,
}

impl EventLevel {
    pub fn wants(self, kind: EventKind) -> bool {
        match self {
            EventLevel::None => false,
            EventLevel::Exec => kind == EventKind::Exec,
            EventLevel::All => true,
        }
    }
}

/// The `sinks:` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SinksConfig {
    pub jsonl: JsonlConfig,
    pub redaction: redact::RedactionConfig,
    pub otlp: otlp::OtlpConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JsonlConfig {
    /// File to append JSON lines to, `-` for stdout; unset disables the sink.
    pub path: Option<PathBuf>,
    /// Which events to write besides findings.
    pub events: EventLevel,
    /// Rotate the file (to `<path>.1`) when it grows past this many bytes; 0 disables rotation.
    pub max_bytes: u64,
    /// Events and finding lines waiting for the writer thread; beyond it they are dropped and counted.
    pub queue: usize,
    /// Bytes held by what waits for the writer thread (events with their strings, rendered finding
    /// lines); beyond it events are dropped and counted. Bounds memory when the output cannot keep up
    /// (a storm with every event written).
    pub queue_bytes: u64,
}

impl Default for JsonlConfig {
    fn default() -> Self {
        JsonlConfig {
            path: None,
            events: EventLevel::None,
            max_bytes: 100 << 20,
            queue: 16384,
            queue_bytes: 16 << 20,
        }
    }
}

impl SinksConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.redaction.validate()?;
        self.otlp.validate()?;
        if self.jsonl.queue == 0 {
            return Err((
                "sinks.jsonl.queue".into(),
                "0 is not allowed: must be at least 1".into(),
            ));
        }
        if self.jsonl.queue_bytes < 65536 {
            return Err((
                "sinks.jsonl.queue_bytes".into(),
                format!(
                    "{} is not allowed: must be at least 65536",
                    self.jsonl.queue_bytes
                ),
            ));
        }
        if self.jsonl.max_bytes != 0 && self.jsonl.max_bytes < 4096 {
            return Err((
                "sinks.jsonl.max_bytes".into(),
                format!(
                    "{} is not allowed: use 0 (no rotation) or at least 4096",
                    self.jsonl.max_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// Every configured log sink.
pub struct Sinks {
    jsonl: Option<(jsonl::JsonlSink, EventLevel)>,
    otlp: Option<otlp::OtlpSink>,
}

impl crate::detect::Output for Sinks {
    fn event(&mut self, ev: &Arc<Event>) {
        Sinks::event(self, ev)
    }

    fn finding(&mut self, f: &Finding) {
        Sinks::finding(self, f)
    }
}

impl Sinks {
    pub fn new(config: &SinksConfig, metrics: &metrics::Metrics) -> anyhow::Result<Sinks> {
        let jsonl = match &config.jsonl.path {
            Some(path) => Some((
                jsonl::JsonlSink::open(&config.jsonl, path, metrics)?,
                config.jsonl.events,
            )),
            None => None,
        };
        let otlp = if config.otlp.enabled() {
            Some(otlp::OtlpSink::start(&config.otlp, metrics)?)
        } else {
            None
        };
        Ok(Sinks { jsonl, otlp })
    }

    /// An event to the sinks that want it: the JSON-lines sink queues it as it is (its thread renders
    /// it); OTLP gets a record rendered here.
    pub fn event(&mut self, ev: &Arc<Event>) {
        if let Some((sink, level)) = &mut self.jsonl {
            if level.wants(ev.kind) {
                sink.write_event(ev);
            }
        }
        if let Some(o) = &self.otlp {
            if o.events.wants(ev.kind) {
                o.send(render::event_record(ev));
            }
        }
    }

    pub fn finding(&mut self, f: &Finding) {
        // Metrics only (no log sink on): nothing to render.
        if self.jsonl.is_none() && self.otlp.is_none() {
            return;
        }
        let r = render::finding_record(f);
        if let Some((sink, _)) = &mut self.jsonl {
            sink.write(&r);
        }
        if let Some(o) = &self.otlp {
            o.send(r);
        }
    }

    /// Flushes and closes every sink (bounded in time).
    pub fn shutdown(self) {
        if let Some((sink, _)) = self.jsonl {
            sink.close();
        }
        if let Some(o) = self.otlp {
            o.shutdown();
        }
    }
}
