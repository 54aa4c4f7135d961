//! Findings and their severities: what detection emits, as data. Sinks and the HTTP API render them.
use std::sync::Arc;
use std::time::SystemTime;

use super::Event;

macro_rules! severities {
    ($( $variant:ident = $name:literal, $otel_number:literal, $otel_text:literal; )*) => {
        /// Finding severities, lowest first, with their OpenTelemetry severity number and text.
        #[derive(
            Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord,
            prometheus_client::encoding::EncodeLabelValue, serde::Serialize, serde::Deserialize,
        )]
        #[serde(rename_all = "lowercase")]
        #[allow(non_camel_case_types)]
        pub enum Severity {
            $( $variant, )*
        }

        impl Severity {
            pub const ALL: &'static [Severity] = &[ $( Severity::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( Severity::$variant => $name, )* }
            }

            pub fn parse(s: &str) -> Option<Severity> {
                match s { $( $name => Some(Severity::$variant), )* _ => None }
            }

            /// OpenTelemetry severity number and text for a finding of this severity.
            pub fn otel(self) -> (i32, &'static str) {
                match self { $( Severity::$variant => ($otel_number, $otel_text), )* }
            }
        }
    };
}

severities! {
    info = "info", 9, "INFO";
    low = "low", 13, "WARN";
    medium = "medium", 13, "WARN";
    high = "high", 17, "ERROR";
    critical = "critical", 21, "FATAL";
}

macro_rules! models {
    ($( $variant:ident = $name:literal, $severity:ident, $doc:literal; )*) => {
        /// The baseline models, in a stable order (the registry: `ALL`, names, severities, docs).
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum Model {
            $( #[doc = $doc] $variant, )*
        }

        impl Model {
            pub const ALL: &'static [Model] = &[ $( Model::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( Model::$variant => $name, )* }
            }

            pub fn parse(s: &str) -> Option<Model> {
                match s { $( $name => Some(Model::$variant), )* _ => None }
            }

            /// Severity of an anomaly in this model.
            pub fn severity(self) -> Severity {
                match self { $( Model::$variant => Severity::$severity, )* }
            }

            pub fn description(self) -> &'static str {
                match self { $( Model::$variant => $doc, )* }
            }
        }
    };
}

models! {
    NetworkProcess = "network_process", medium, "Executables that use the network (connect, accept, listen).";
    ProcessLineage = "process_lineage", medium, "Which parent executable starts which child executable.";
    ProcessUser = "process_user", low, "Which user each executable runs as.";
    ListenPort = "listen_port", medium, "Which executable listens on which TCP port.";
    OutboundPort = "outbound_port", low, "Which executable connects to which port class and address class.";
    FileWriter = "file_writer", medium, "Which executable, as which user, changes files in which watched directory.";
    IoUringUser = "io_uring_user", medium, "Which executables set up io_uring rings.";
    SensitiveReader = "sensitive_reader", high, "Which executable reads which class of credential store or kernel memory/keyring interface.";
    RuleMatch = "rule_match", info, "Benign rule matches (info and low rules) seen while learning or accepted: not reported again.";
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
    /// Evidence that tripline itself was tampered with (see the `tamper` module).
    Tamper {
        reason: &'static str,
        detail: String,
        /// `unclean_stop`: seconds without monitoring.
        gap_seconds: Option<u64>,
    },
}

impl FindingSource {
    /// `rule:<id>` or `model:<name>`: what the dedup window and the threat level count by.
    pub fn name(&self) -> String {
        match self {
            FindingSource::Rule { id, .. } => format!("rule:{id}"),
            FindingSource::Anomaly { model, .. } => format!("model:{model}"),
            FindingSource::Tamper { reason, .. } => format!("tamper:{reason}"),
        }
    }
}

/// One thing that was new or matched: a rule match or a new baseline key, with the event that showed it.
#[derive(Debug, Clone)]
pub struct Part {
    pub source: FindingSource,
    pub severity: Severity,
    pub summary: String,
    pub event: Arc<Event>,
    /// The account change an `account_change:` rule matched.
    pub account: Option<super::account::AccountChange>,
}

/// What detection reports: every rule match and new baseline key of one process (and the children it
/// started) inside the correlation window, as one finding. `source`, `summary` and `event` are the
/// strongest part's; `severity` is the highest.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Unique id of this finding.
    pub id: String,
    pub time: SystemTime,
    pub severity: Severity,
    pub source: FindingSource,
    pub summary: String,
    pub event: Arc<Event>,
    /// Every part, in the order seen (the strongest included).
    pub parts: Vec<Part>,
    /// The account change a rule with `account_change:` matched (its attributes go in the record).
    pub account: Option<super::account::AccountChange>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_in_all_and_round_trips() {
        for m in Model::ALL {
            assert_eq!(Model::parse(m.as_str()), Some(*m));
        }
        assert!(Model::ALL.contains(&Model::FileWriter));
        // The engine walks `ALL` for the enabled models in a set's (`Ord`) order.
        assert!(Model::ALL.windows(2).all(|w| w[0] < w[1]), "ordered");
    }

    #[test]
    fn docs_detection_lists_every_model_with_its_severity() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/detection.md");
        let text = std::fs::read_to_string(path).unwrap();
        for m in Model::ALL {
            let row = text
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", m.as_str())))
                .unwrap_or_else(|| panic!("docs/detection.md has no row for model {}", m.as_str()));
            assert!(
                row.trim_end()
                    .ends_with(&format!("| {} |", m.severity().as_str())),
                "docs/detection.md: {row}"
            );
        }
    }

    #[test]
    fn every_severity_is_in_all_and_round_trips() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(*s));
        }
        assert!(Severity::ALL.windows(2).all(|w| w[0] < w[1]), "ordered");
    }
}
