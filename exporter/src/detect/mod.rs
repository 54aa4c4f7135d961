//! Detection: rules (policy) and baselines (learned models) turn events into findings.
//!
//! One [`Engine`] runs in the detection task. It owns the policy, the dedup window and which processes
//! are network-facing; the baselines, recent findings and threat level sit in [`Shared`] so the HTTP
//! API and scrapes can read them.
pub mod accounts;
pub mod baseline;
pub mod cli;
pub mod policy;
pub mod recent;
pub mod threat;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::families;
use crate::model::record::rfc3339;
use crate::model::{Event, EventData, EventKind};
pub use crate::model::{Finding, FindingSource};
use crate::telemetry::metrics::{
    Bounded, FindingReason, KeyState, Metrics, ModelLabels, ModelSeverityLabels, ModelStateLabels,
    ReasonLabels, RuleLabels, SuppressReason, SuppressedLabels,
};
use baseline::{Baseline, Baselines, Mode, Model, Outcome};
use policy::{Context, Policy};
use recent::FindingsRing;
use threat::ThreatLevel;

/// The `detect:` section of the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Policy file replacing the embedded default policy.
    pub policy_file: Option<PathBuf>,
    /// The same (rule or model, subject) inside this window is one finding; repeats are counted only.
    #[serde(with = "humantime_serde")]
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Where the model is persisted (and loaded from at start). Unset: kept in memory only.
    pub file: Option<PathBuf>,
    pub mode: Mode,
    /// `auto`: learn for this long, then monitor.
    #[serde(with = "humantime_serde")]
    pub learn_for: Duration,
    /// `auto`: also switch to monitor once no new key appeared for this long (0 = off).
    #[serde(with = "humantime_serde")]
    pub quiet_period: Duration,
    /// How often the model is written to `file` (it is also written on shutdown).
    #[serde(with = "humantime_serde")]
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

/// State the HTTP API and scrapes read.
#[derive(Debug)]
pub struct Shared {
    pub findings: Mutex<FindingsRing<Arc<Finding>>>,
    pub baselines: Mutex<Baselines>,
    pub threat: Mutex<ThreatLevel>,
}

/// A rule match or a new baseline key, before deduplication.
struct Candidate {
    source: FindingSource,
    severity: crate::model::Severity,
    summary: String,
    /// What the finding is about (dedup key together with the source).
    subject: String,
    /// The account change an `account_change:` rule matched.
    account: Option<crate::model::account::AccountChange>,
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
    /// Snapshot of the account databases, diffed when they are written.
    accounts: accounts::AccountWatch,
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
            mode = ?b.mode,
            baseline_file = ?b.file,
            loaded_from_file = from_file,
            "detection ready"
        );
        for r in &policy.rules {
            drop(metrics.rule_matches.get_or_create(&RuleLabels {
                rule: Bounded::from_closed_set(&r.id),
                severity: r.severity,
            }));
        }
        for m in &baselines.enabled {
            drop(metrics.anomalies.get_or_create(&ModelSeverityLabels {
                model: *m,
                severity: m.severity(),
            }));
        }
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
            accounts: accounts::AccountWatch::new(std::path::Path::new("/")),
        };
        engine.update_gauges();
        Ok(engine)
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    pub fn process(&mut self, ev: &Arc<Event>) -> Vec<Arc<Finding>> {
        self.process_at(ev, SystemTime::now())
    }

    pub fn process_at(&mut self, ev: &Arc<Event>, now: SystemTime) -> Vec<Arc<Finding>> {
        let ctx = self.context(ev);
        let mut candidates = self.rule_matches(ev, &ctx);
        if accounts::touches_databases(ev) {
            let changes = self.accounts.on_write(ev);
            candidates.extend(self.account_matches(ev, &ctx, changes));
        }
        candidates.extend(self.anomalies(ev, now));
        let findings: Vec<Arc<Finding>> = candidates
            .into_iter()
            .filter_map(|c| self.report(c, ev, now))
            .collect();
        if !findings.is_empty() {
            self.update_gauges();
        }
        findings
    }

    /// Every policy rule the event matches.
    fn rule_matches(&self, ev: &Event, ctx: &Context) -> Vec<Candidate> {
        let mut out = Vec::new();
        for rule in &self.policy.rules {
            if !rule.matches(ev, ctx) {
                continue;
            }
            out.push(Candidate {
                source: FindingSource::Rule {
                    id: rule.id.clone(),
                    description: rule.description.clone(),
                    category: rule.tactic.clone(),
                    techniques: rule.techniques.clone(),
                    ruleset: self.policy.name.clone(),
                },
                severity: rule.severity,
                summary: format!("{}: {}", rule.id, families::summary(ev)),
                subject: subject(ev),
                account: None,
            });
        }
        out
    }

    /// The `account_change:` rules each account change matches (one candidate per rule and change).
    fn account_matches(
        &self,
        ev: &Event,
        ctx: &Context,
        changes: Vec<crate::model::account::AccountChange>,
    ) -> Vec<Candidate> {
        let mut out = Vec::new();
        for change in changes {
            let ctx = Context {
                account: Some(change.clone()),
                ..ctx.clone()
            };
            for rule in self
                .policy
                .rules
                .iter()
                .filter(|r| r.uses_account_change() && r.matches(ev, &ctx))
            {
                out.push(Candidate {
                    source: FindingSource::Rule {
                        id: rule.id.clone(),
                        description: rule.description.clone(),
                        category: rule.tactic.clone(),
                        techniques: rule.techniques.clone(),
                        ruleset: self.policy.name.clone(),
                    },
                    severity: rule.severity,
                    summary: format!(
                        "{}: {} ({})",
                        rule.id,
                        change.summary(),
                        families::summary(ev)
                    ),
                    subject: change.subject(),
                    account: Some(change.clone()),
                });
            }
        }
        out
    }

    /// Account changes that showed up after the write that made them (an in-place write still under
    /// way when its event arrived), as findings about that write. Called once a second.
    pub fn recheck_accounts(&mut self, now: SystemTime) -> Vec<Arc<Finding>> {
        let Some((ev, changes)) = self.accounts.recheck() else {
            return Vec::new();
        };
        let candidates = self.account_matches(&ev, &Context::default(), changes);
        let findings: Vec<Arc<Finding>> = candidates
            .into_iter()
            .filter_map(|c| self.report(c, &ev, now))
            .collect();
        if !findings.is_empty() {
            self.update_gauges();
        }
        findings
    }

    /// Every baseline key of the event that is new to its model.
    fn anomalies(&self, ev: &Event, now: SystemTime) -> Vec<Candidate> {
        let mut b = self
            .shared
            .baselines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let enabled: Vec<Model> = b.enabled.iter().copied().collect();
        let mut out = Vec::new();
        for model in enabled {
            let Some(key) = model.key(ev) else { continue };
            if b.observe(model, &key, now) == Outcome::Anomaly {
                out.push(Candidate {
                    summary: format!("new {} behaviour: {key}", model.as_str()),
                    source: FindingSource::Anomaly {
                        model: model.as_str().into(),
                        key: key.clone(),
                    },
                    severity: model.severity(),
                    subject: key,
                    account: None,
                });
            }
        }
        out
    }

    /// Counts a candidate and, unless the same (source, subject) was reported inside the suppression
    /// window, turns it into a finding (threat level, API ring).
    fn report(&mut self, c: Candidate, ev: &Arc<Event>, now: SystemTime) -> Option<Arc<Finding>> {
        let reason = match c.source {
            FindingSource::Rule { .. } => FindingReason::rule,
            FindingSource::Anomaly { .. } => FindingReason::baseline,
        };
        self.metrics
            .finding_occurrences
            .get_or_create(&ReasonLabels { reason })
            .inc();
        let dedup_key = (c.source.name(), c.subject);
        if let Some(at) = self.reported.get(&dedup_key) {
            if now.duration_since(*at).unwrap_or_default() < self.suppression {
                self.metrics
                    .findings_suppressed
                    .get_or_create(&SuppressedLabels {
                        reason: SuppressReason::duplicate,
                    })
                    .inc();
                return None;
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
        let severity = c.severity;
        match &c.source {
            FindingSource::Rule { id, .. } => {
                self.metrics
                    .rule_matches
                    .get_or_create(&RuleLabels {
                        rule: Bounded::from_closed_set(id),
                        severity,
                    })
                    .inc();
            }
            FindingSource::Anomaly { model, .. } => {
                if let Some(model) = Model::parse(model) {
                    self.metrics
                        .anomalies
                        .get_or_create(&ModelSeverityLabels { model, severity })
                        .inc();
                }
            }
        }
        self.seq += 1;
        let f = Arc::new(Finding {
            id: format!("{:016x}-{:x}", ev.ktime_ns, self.seq),
            time: ev.time,
            severity,
            source: c.source,
            summary: c.summary,
            event: ev.clone(),
            account: c.account,
        });
        self.shared
            .threat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(now, severity, &f.source.name());
        self.shared
            .findings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(now, f.clone());
        Some(f)
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
            account: None,
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
            b.baseline.provenance.learned_until = Some(rfc3339(SystemTime::now()));
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
            let model = *m;
            self.metrics
                .baseline_learning
                .get_or_create(&ModelLabels { model })
                .set(i64::from(b.learning()));
            let keys = b.baseline.models.get(m).cloned().unwrap_or_default();
            for (state, n) in [
                (KeyState::learned, keys.learned.len()),
                (KeyState::seen_in_monitor, keys.seen_in_monitor.len()),
                (KeyState::accepted, keys.accepted.len()),
            ] {
                self.metrics
                    .baseline_keys
                    .get_or_create(&ModelStateLabels { model, state })
                    .set(n as i64);
            }
        }
    }
}

/// The detection stage's loop: every event from `rx` through the engine, then to `output` with its
/// findings; `Engine::tick` about once a second (with findings about an earlier event, `output` gets
/// no event); the baseline persisted when `rx` closes.
pub async fn run(
    mut engine: Engine,
    mut rx: tokio::sync::mpsc::Receiver<Arc<Event>>,
    mut output: impl FnMut(Option<&Event>, &[Arc<Finding>]),
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                let findings = engine.process(&ev);
                output(Some(&ev), &findings);
            }
            _ = tick.tick() => {
                let now = SystemTime::now();
                engine.tick(now);
                let late = engine.recheck_accounts(now);
                if !late.is_empty() {
                    output(None, &late);
                }
            }
        }
    }
    if let Err(e) = engine.persist() {
        tracing::error!(error = %e, "could not persist the baseline at shutdown");
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
        // A second file changed by the same program is news, not a repeat.
        EventData::File(f) => format!("|{}", f.new_path.as_deref().unwrap_or(&f.path)),
        _ => String::new(),
    };
    format!("{}|{parent}{extra}", ev.process.exe)
}

#[cfg(test)]
mod tests;
