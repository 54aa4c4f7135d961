//! Detection: rules (policy) and baselines (learned models) turn events into findings.
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

use crate::event::Event;
use crate::sinks::metrics::{Metrics, Severity};

/// The `detect:` section of the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {}

impl DetectConfig {
    /// Returns `(field, message)` for the first invalid value.
    pub fn validate(&self) -> Result<(), (String, String)> {
        Ok(())
    }
}

/// What raised a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingSource {
    Rule {
        id: String,
        description: String,
        /// MITRE ATT&CK tactic (the rule's group), e.g. `execution`.
        category: String,
        /// MITRE ATT&CK technique ids, e.g. `T1059.004`.
        techniques: Vec<String>,
        ruleset: String,
    },
    Anomaly {
        model: String,
        /// The normalised key that was new, e.g. `/usr/sbin/nginx -> /bin/sh`.
        key: String,
    },
}

#[derive(Debug, Clone)]
pub struct Finding {
    /// Unique id of this finding (for dedup references and the API).
    pub id: String,
    pub time: SystemTime,
    pub severity: Severity,
    pub source: FindingSource,
    pub summary: String,
    pub event: Arc<Event>,
}

/// Runs every detector over each event.
pub struct Engine {
    _metrics: Metrics,
}

impl Engine {
    pub fn new(_config: &DetectConfig, metrics: Metrics) -> anyhow::Result<Engine> {
        Ok(Engine { _metrics: metrics })
    }

    pub fn process(&mut self, _event: &Arc<Event>) -> Vec<Finding> {
        Vec::new()
    }
}
