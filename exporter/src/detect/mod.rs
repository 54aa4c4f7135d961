//! Detection: rules (policy) and baselines (learned models) turn events into findings.
//!
//! One [`Engine`] runs in the detection task. It owns the policy, the dedup window and which processes
//! are network-facing; the baselines, recent findings and threat level sit in [`Shared`] so the HTTP
//! API and scrapes can read them.
pub mod baseline;
pub mod cli;
pub mod findings;
pub mod policy;
pub mod threat;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::event::{Event, EventData, EventKind};
use crate::sinks::metrics::{
    BaselineInfoLabels, Metrics, ModelLabels, ModelSeverityLabels, ModelStateLabels, ReasonLabels,
    RuleLabels, Severity,
};
use crate::sinks::record;
use baseline::{Baseline, Baselines, Mode, Model, Outcome};
use findings::FindingsRing;
use policy::{Context, Policy};
use threat::ThreatLevel;

/// The `detect:` section of the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Policy file replacing the embedded default policy.
    pub policy_file: Option<PathBuf>,
    /// The same (rule or model, subject) inside this window is one finding; repeats are counted only.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub suppression_window: Duration,
    /// Recent findings kept for `GET /api/v1/findings`.
    pub findings_kept: usize,
    pub baseline: BaselineConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            policy_file: None,
            suppression_window: Duration::from_secs(600),
            findings_kept: 1000,
            baseline: BaselineConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Where the model is persisted (and loaded from at start). Unset: kept in memory only.
    pub file: Option<PathBuf>,
    pub mode: Mode,
    /// `auto`: learn for this long, then monitor.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub learn_for: Duration,
    /// `auto`: also switch to monitor once no new key appeared for this long (0 = off).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub quiet_period: Duration,
    /// How often the model is written to `file` (it is also written on shutdown).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub persist_interval: Duration,
    /// Enabled models.
    pub models: Vec<String>,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            file: None,
            mode: Mode::Auto,
            learn_for: Duration::from_secs(600),
            quiet_period: Duration::ZERO,
            persist_interval: Duration::from_secs(60),
            models: Model::ALL.iter().map(|m| m.as_str().to_string()).collect(),
        }
    }
}

impl DetectConfig {
    /// Returns `(field, message)` for the first invalid value.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.findings_kept == 0 || self.findings_kept > 1_000_000 {
            return Err((
                "detect.findings_kept".into(),
                format!("{} is not allowed: 1..1000000", self.findings_kept),
            ));
        }
        if self.baseline.persist_interval < Duration::from_secs(1) {
            return Err((
                "detect.baseline.persist_interval".into(),
                "must be at least 1s".into(),
            ));
        }
        for m in &self.baseline.models {
            if Model::parse(m).is_none() {
                let allowed: Vec<&str> = Model::ALL.iter().map(|m| m.as_str()).collect();
                return Err((
                    "detect.baseline.models".into(),
                    format!("{m:?} is not a model; allowed: {}", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn models(&self) -> BTreeSet<Model> {
        self.baseline
            .models
            .iter()
            .filter_map(|m| Model::parse(m))
            .collect()
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

impl FindingSource {
    fn name(&self) -> String {
        match self {
            FindingSource::Rule { id, .. } => format!("rule:{id}"),
            FindingSource::Anomaly { model, .. } => format!("model:{model}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Finding {
    /// Unique id of this finding.
    pub id: String,
    pub time: SystemTime,
    pub severity: Severity,
    pub source: FindingSource,
    pub summary: String,
    pub event: Arc<Event>,
}

/// State the HTTP API and scrapes read.
#[derive(Debug)]
pub struct Shared {
    pub findings: Mutex<FindingsRing>,
    pub baselines: Mutex<Baselines>,
    pub threat: Mutex<ThreatLevel>,
}

const MAX_DEDUP_KEYS: usize = 65_536;
const MAX_NETWORK_FACING: usize = 65_536;

pub struct Engine {
    policy: Policy,
    shared: Arc<Shared>,
    metrics: Metrics,
    suppression: Duration,
    /// (source, subject) → when it was last reported as new.
    reported: HashMap<(String, String), SystemTime>,
    /// Processes that listened or accepted: pid → start time.
    network_facing: HashMap<u32, u64>,
    baseline_file: Option<PathBuf>,
    persist_interval: Duration,
    last_persist: SystemTime,
    seq: u64,
}

impl Engine {
    pub fn new(config: &DetectConfig, metrics: Metrics) -> anyhow::Result<Engine> {
        Engine::new_at(config, metrics, SystemTime::now())
    }

    pub fn new_at(
        config: &DetectConfig,
        metrics: Metrics,
        now: SystemTime,
    ) -> anyhow::Result<Engine> {
        let policy = Policy::load(config.policy_file.as_deref())?;
        let loaded = match &config.baseline.file {
            Some(f) => Baseline::load_state(f)?,
            None => None,
        };
        let from_file = loaded.is_some();
        let version = match &loaded {
            None => "none".to_string(),
            Some(b) => b
                .provenance
                .version
                .clone()
                .unwrap_or_else(|| "unversioned".to_string()),
        };
        // One series: the baseline is loaded once, at start.
        metrics.baseline_info.clear();
        metrics
            .baseline_info
            .get_or_create(&BaselineInfoLabels {
                version: version.clone(),
            })
            .set(1);
        let baseline = loaded.unwrap_or_default();
        let b = &config.baseline;
        let baselines = Baselines::new(
            baseline,
            b.mode,
            b.learn_for,
            b.quiet_period,
            config.models(),
            now,
        );
        tracing::info!(
            rules = policy.rules.len(),
            policy = %policy.name,
            mode = %crate::logging::value_name(&b.mode),
            baseline_file = %crate::logging::opt_path(&b.file),
            loaded_from_file = from_file,
            baseline_version = %version,
            "detection ready"
        );
        for r in &policy.rules {
            drop(metrics.rule_matches.get_or_create(&RuleLabels {
                rule: r.id.clone(),
                severity: r.severity,
            }));
        }
        for m in &baselines.enabled {
            drop(metrics.anomalies.get_or_create(&ModelSeverityLabels {
                model: m.as_str().into(),
                severity: m.severity(),
            }));
        }
        for reason in ["rule", "baseline"] {
            drop(metrics.finding_occurrences.get_or_create(&ReasonLabels {
                reason: reason.into(),
            }));
        }
        drop(metrics.findings_suppressed.get_or_create(&ReasonLabels {
            reason: "duplicate".into(),
        }));
        let shared = Arc::new(Shared {
            findings: Mutex::new(FindingsRing::new(config.findings_kept)),
            baselines: Mutex::new(baselines),
            threat: Mutex::new(ThreatLevel::default()),
        });
        let engine = Engine {
            policy,
            shared,
            metrics,
            suppression: config.suppression_window,
            reported: HashMap::new(),
            network_facing: HashMap::new(),
            baseline_file: config.baseline.file.clone(),
            persist_interval: config.baseline.persist_interval,
            last_persist: now,
            seq: 0,
        };
        engine.update_gauges();
        Ok(engine)
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    pub fn process(&mut self, ev: &Arc<Event>) -> Vec<Finding> {
        self.process_at(ev, SystemTime::now())
    }

    pub fn process_at(&mut self, ev: &Arc<Event>, now: SystemTime) -> Vec<Finding> {
        let ctx = self.context(ev);
        let mut out = Vec::new();

        for rule in &self.policy.rules {
            if !rule.matches(ev, &ctx) {
                continue;
            }
            let source = FindingSource::Rule {
                id: rule.id.clone(),
                description: rule.description.clone(),
                category: rule.tactic.clone(),
                techniques: rule.techniques.clone(),
                ruleset: self.policy.name.clone(),
            };
            let summary = format!("{}: {}", rule.id, record::event_record(ev).body);
            out.push((source, rule.severity, summary, subject(ev)));
        }

        {
            let mut b = self
                .shared
                .baselines
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let enabled: Vec<Model> = b.enabled.iter().copied().collect();
            for model in enabled {
                let Some(key) = model.key(ev) else { continue };
                if b.observe(model, &key, now) == Outcome::Anomaly {
                    let summary = format!("new {} behaviour: {key}", model.as_str());
                    let source = FindingSource::Anomaly {
                        model: model.as_str().into(),
                        key: key.clone(),
                    };
                    out.push((source, model.severity(), summary, key));
                }
            }
        }

        let mut findings = Vec::new();
        for (source, severity, summary, subj) in out {
            let reason = match source {
                FindingSource::Rule { .. } => "rule",
                FindingSource::Anomaly { .. } => "baseline",
            };
            self.metrics
                .finding_occurrences
                .get_or_create(&ReasonLabels {
                    reason: reason.into(),
                })
                .inc();
            let dedup_key = (source.name(), subj);
            if let Some(at) = self.reported.get(&dedup_key) {
                if now.duration_since(*at).unwrap_or_default() < self.suppression {
                    self.metrics
                        .findings_suppressed
                        .get_or_create(&ReasonLabels {
                            reason: "duplicate".into(),
                        })
                        .inc();
                    continue;
                }
            }
            if self.reported.len() >= MAX_DEDUP_KEYS {
                let window = self.suppression;
                self.reported
                    .retain(|_, at| now.duration_since(*at).unwrap_or_default() < window);
                if self.reported.len() >= MAX_DEDUP_KEYS {
                    self.reported.clear();
                }
            }
            self.reported.insert(dedup_key, now);
            match &source {
                FindingSource::Rule { id, .. } => {
                    self.metrics
                        .rule_matches
                        .get_or_create(&RuleLabels {
                            rule: id.clone(),
                            severity,
                        })
                        .inc();
                }
                FindingSource::Anomaly { model, .. } => {
                    self.metrics
                        .anomalies
                        .get_or_create(&ModelSeverityLabels {
                            model: model.clone(),
                            severity,
                        })
                        .inc();
                }
            }
            self.seq += 1;
            let f = Finding {
                id: format!("{:016x}-{:x}", ev.ktime_ns, self.seq),
                time: ev.time,
                severity,
                source,
                summary,
                event: ev.clone(),
            };
            self.shared
                .threat
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(now, severity, &f.source.name());
            self.shared
                .findings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(now, record::to_json(&record::finding_record(&f)));
            findings.push(f);
        }
        if !findings.is_empty() {
            self.update_gauges();
        }
        findings
    }

    /// Process-tree facts rules can use, kept current from the event stream.
    fn context(&mut self, ev: &Event) -> Context {
        let p = &ev.process;
        match ev.kind {
            EventKind::Listen | EventKind::Accept => {
                if self.network_facing.len() >= MAX_NETWORK_FACING {
                    self.network_facing.clear();
                }
                self.network_facing.insert(p.pid, p.start_ns);
            }
            EventKind::Exit if self.network_facing.get(&p.pid) == Some(&p.start_ns) => {
                self.network_facing.remove(&p.pid);
            }
            _ => {}
        }
        let parent_network_facing = ev.parent.as_ref().is_some_and(|par| {
            self.network_facing
                .get(&par.pid)
                .is_some_and(|s| same_start(*s, par.start_ns))
        });
        Context {
            parent_network_facing,
        }
    }

    /// Mode transitions, gauges, the threat level and periodic persistence. Called about once a second.
    pub fn tick(&mut self, now: SystemTime) {
        let changed = self
            .shared
            .baselines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tick(now);
        if changed {
            tracing::info!("baseline learning window over: monitoring for new behaviour");
        }
        self.update_gauges();
        let t = self
            .shared
            .threat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .score(now);
        self.metrics.threat_level.set(t);
        if now.duration_since(self.last_persist).unwrap_or_default() >= self.persist_interval {
            self.last_persist = now;
            if let Err(e) = self.persist() {
                tracing::warn!(error = %e, "could not persist the baseline");
            }
        }
    }

    /// Writes the baseline to its file (when configured and changed).
    pub fn persist(&mut self) -> anyhow::Result<()> {
        let Some(path) = &self.baseline_file else {
            return Ok(());
        };
        let mut b = self
            .shared
            .baselines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !b.dirty && path.exists() {
            return Ok(());
        }
        if b.learning() {
            b.baseline.provenance.learned_until = Some(record::rfc3339(SystemTime::now()));
        }
        b.baseline.save(path)?;
        b.dirty = false;
        Ok(())
    }

    fn update_gauges(&self) {
        let b = self
            .shared
            .baselines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for m in &b.enabled {
            let model = m.as_str().to_string();
            self.metrics
                .baseline_learning
                .get_or_create(&ModelLabels {
                    model: model.clone(),
                })
                .set(i64::from(b.learning()));
            let keys = b.baseline.models.get(m).cloned().unwrap_or_default();
            for (state, n) in [
                ("learned", keys.learned.len()),
                ("seen_in_monitor", keys.seen_in_monitor.len()),
                ("accepted", keys.accepted.len()),
            ] {
                self.metrics
                    .baseline_keys
                    .get_or_create(&ModelStateLabels {
                        model: model.clone(),
                        state: state.into(),
                    })
                    .set(n as i64);
            }
        }
    }
}

/// Start times from the kernel (ns) and from procfs (ticks × 10 ms) agree to the tick.
fn same_start(a: u64, b: u64) -> bool {
    a / 10_000_000 == b / 10_000_000
}

/// What a rule finding is about, for deduplication: the executable and its parent.
fn subject(ev: &Event) -> String {
    let parent = ev.parent.as_ref().map(|p| p.exe.as_str()).unwrap_or("");
    let extra = match &ev.data {
        EventData::Net(n) if ev.kind == EventKind::Listen => format!("|{}", n.local.port()),
        _ => String::new(),
    };
    format!("{}|{parent}{extra}", ev.process.exe)
}

#[cfg(test)]
mod tests;
