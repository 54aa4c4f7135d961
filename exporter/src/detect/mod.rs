//! Detection: rules (policy) and baselines (learned models) turn events into findings.
//!
//! One [`Engine`] runs in the detection task. It owns the policy, the dedup window and which processes
//! are network-facing; the baselines, recent findings and threat level sit in [`Shared`] so the HTTP
//! API and scrapes can read them.
pub mod accounts;
pub mod baseline;
pub mod cli;
pub mod correlate;
pub mod policy;
pub mod recent;
pub mod threat;
pub mod threshold;

use std::collections::BTreeSet;

// Keyed by pid and rule: a fast hasher (seeded per process), not SipHash; looked up per event.
use foldhash::{HashMap, HashMapExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::families;
use crate::model::record::rfc3339;
use crate::model::{Event, EventData, EventKind};
pub use crate::model::{Finding, FindingSource, Part};
use crate::telemetry::metrics::{
    BaselineInfoLabels, Bounded, FindingReason, KeyState, Metrics, ModelLabels,
    ModelSeverityLabels, ModelStateLabels, ReasonLabels, RuleLabels, SeverityLabels,
    SuppressReason, SuppressedLabels,
};
use baseline::{Baseline, Baselines, Mode, Model, Outcome};
use policy::{Context, Policy};
use recent::FindingsRing;
use threat::ThreatLevel;

/// The `detect:` section of the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Policy file replacing the embedded default policy.
    pub policy_file: Option<PathBuf>,
    /// The same (rule or model, subject) inside this window is one finding; repeats are counted only.
    /// A rule's subject is the program, its parent and the shape of its arguments.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub suppression_window: Duration,
    /// The same for high and critical findings: a repeated attack is news again sooner than a repeated
    /// benign command.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub high_suppression_window: Duration,
    /// Rule matches and new baseline keys of one process and the children it starts within this window
    /// are one finding (0 reports every part on its own, at once).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub correlation_window: Duration,
    /// Recent findings kept for `GET /api/v1/findings`.
    pub findings_kept: usize,
    pub baseline: BaselineConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            policy_file: None,
            suppression_window: Duration::from_secs(24 * 3600),
            high_suppression_window: Duration::from_secs(3600),
            correlation_window: Duration::from_secs(3),
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
/// How soon after a connect an exec (or a duplication onto stdio) by the same process counts as
/// `connected_before`.
const CONNECT_BEFORE_NS: u64 = 5_000_000_000;

/// A stop signal to tripline that is its own life cycle: TERM, INT or HUP from the service manager (pid
/// 1), from the process that started tripline, or from a process of tripline's own effective uid running
/// in a login session (an operator). Anything else sent to tripline stays a finding.
fn lifecycle_signal(ev: &Event) -> bool {
    const STOP_SIGNALS: [u64; 3] = [1, 2, 15];
    let Some(x) = ev.sys().filter(|_| ev.kind == EventKind::SignalSelf) else {
        return false;
    };
    let sig = if x.syscall == "tgkill" {
        x.args[2]
    } else {
        x.args[1]
    };
    if !STOP_SIGNALS.contains(&sig) {
        return false;
    }
    let p = &ev.process;
    // SAFETY: geteuid has no preconditions.
    let our_euid = unsafe { libc::geteuid() };
    p.pid == 1
        || p.pid == std::os::unix::process::parent_id()
        || (p.euid == our_euid && p.auid.is_some())
}

pub struct Engine {
    policy: Policy,
    /// Which rules can match each event kind (built from `policy` once).
    rules_by_kind: policy::KindIndex,
    /// The policy's process-string globs, answered per distinct string (see `policy::Field`).
    glob_memo: std::cell::RefCell<policy::GlobMemo>,
    shared: Arc<Shared>,
    metrics: Metrics,
    suppression: Duration,
    high_suppression: Duration,
    /// (source, subject) → when it was last reported as new.
    reported: HashMap<(String, String), SystemTime>,
    /// Processes that listened or accepted: pid → start time.
    network_facing: HashMap<u32, u64>,
    /// Last successful connect per process: pid → (start time, kernel time of the connect).
    recent_connects: HashMap<u32, (u64, u64)>,
    /// Per-process counting windows of threshold rules.
    windows: threshold::Windows,
    /// Parts waiting to be told as one finding per process.
    correlator: correlate::Correlator,
    baseline_file: Option<PathBuf>,
    /// Modification time of the baseline file when we last read or wrote it.
    file_mtime: Option<SystemTime>,
    persist_interval: Duration,
    last_persist: SystemTime,
    seq: u64,
    /// Snapshot of the account databases, diffed when they are written.
    accounts: accounts::AccountWatch,
    /// The event's normalised program and one model's key, rebuilt per event in place: a key the
    /// baseline knows costs no allocation.
    program_buf: String,
    key_buf: String,
}

impl Engine {
    pub fn new(config: &DetectConfig, metrics: Metrics) -> anyhow::Result<Engine> {
        Engine::new_at(config, metrics, SystemTime::now())
    }

    // Long on purpose: builds every part of the engine (policy, baselines, counters pre-initialised) in one place.
    pub fn new_at(
        config: &DetectConfig,
        metrics: Metrics,
        now: SystemTime,
    ) -> anyhow::Result<Engine> {
        let policy = Policy::load(config.policy_file.as_deref())?;
        let loaded = match &config.baseline.file {
            Some(f) => {
                baseline::check_writable(f)?;
                Baseline::load_state(f)?
            }
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
            rules_by_kind: policy::KindIndex::new(&policy),
            glob_memo: Default::default(),
            policy,
            shared,
            metrics,
            suppression: config.suppression_window,
            high_suppression: config.high_suppression_window,
            reported: HashMap::new(),
            network_facing: HashMap::new(),
            recent_connects: HashMap::new(),
            windows: threshold::Windows::default(),
            correlator: correlate::Correlator::new(config.correlation_window),
            baseline_file: config.baseline.file.clone(),
            file_mtime: config.baseline.file.as_deref().and_then(mtime),
            persist_interval: config.baseline.persist_interval,
            last_persist: now,
            seq: 0,
            accounts: accounts::AccountWatch::new(std::path::Path::new("/")),
            program_buf: String::with_capacity(256),
            key_buf: String::with_capacity(256),
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
        if let EventData::Fork {
            child_pid,
            child_start_ns,
        } = &ev.data
        {
            let me = (ev.process.pid, ev.process.start_ns);
            self.correlator.adopt(me, (*child_pid, *child_start_ns));
        }
        let mut candidates = self.rule_matches(ev, &ctx);
        if accounts::touches_databases(ev) {
            let changes = self.accounts.on_write(ev);
            candidates.extend(self.account_matches(ev, &ctx, changes));
        }
        candidates.extend(self.anomalies(ev, now));
        let parts: Vec<Part> = candidates
            .into_iter()
            .filter_map(|c| self.accept(c, ev, now))
            .collect();
        let closed = self.correlator.add(ev, parts, now);
        self.findings(closed, now)
    }

    /// Findings whose correlation window has passed (called from the tick).
    pub fn flush_at(&mut self, now: SystemTime) -> Vec<Arc<Finding>> {
        let closed = self.correlator.close_due(now);
        self.findings(closed, now)
    }

    /// Every finding still being correlated (at shutdown).
    pub fn flush_all(&mut self) -> Vec<Arc<Finding>> {
        let closed = self.correlator.close_all();
        self.findings(closed, SystemTime::now())
    }

    /// Every policy rule the event matches.
    fn rule_matches(&mut self, ev: &Event, ctx: &Context) -> Vec<Candidate> {
        let mut out = Vec::new();
        let strings = policy::EventStrings::with_memo(ev, &self.policy, &self.glob_memo);
        for &idx in self.rules_by_kind.rules(ev.kind) {
            let rule = &self.policy.rules[idx];
            if !rule.matches_strings(&strings, ctx) {
                continue;
            }
            if let Some(t) = rule.threshold {
                if !self.windows.reached(idx, &t, ev) {
                    continue;
                }
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
        // The event's strings do not depend on the change: built once, globs from the memo.
        let strings = policy::EventStrings::with_memo(ev, &self.policy, &self.glob_memo);
        for change in changes {
            let ctx = Context {
                account: Some(change.clone()),
                ..ctx.clone()
            };
            for rule in self
                .policy
                .rules
                .iter()
                .filter(|r| r.uses_account_change() && r.matches_strings(&strings, &ctx))
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
        let parts: Vec<Part> = candidates
            .into_iter()
            .filter_map(|c| self.accept(c, &ev, now))
            .collect();
        let closed = self.correlator.add(&ev, parts, now);
        self.findings(closed, now)
    }

    /// Every baseline key of the event that is new to its model.
    fn anomalies(&mut self, ev: &Event, now: SystemTime) -> Vec<Candidate> {
        let mut b = self
            .shared
            .baselines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        // Every model keys on exec, network or file data: other events (fork, exit, privilege, tamper)
        // have no key, and the program is normalised once for all models.
        if !matches!(
            ev.data,
            EventData::Exec { .. } | EventData::Net(_) | EventData::File(_)
        ) {
            return out;
        }
        let (program, key) = (&mut self.program_buf, &mut self.key_buf);
        baseline::program_key_into(ev, program);
        // The enabled models, copied out of the baselines (which `observe` borrows) onto the stack.
        let mut models = [Model::ALL[0]; Model::ALL.len()];
        let mut enabled = 0;
        for (slot, m) in models.iter_mut().zip(&b.enabled) {
            *slot = *m;
            enabled += 1;
        }
        for &model in &models[..enabled] {
            if !model.key_into(ev, program, key) {
                continue;
            }
            if b.observe(model, key, now) == Outcome::Anomaly {
                out.push(Candidate {
                    summary: format!(
                        "new {} behaviour: {key} ({})",
                        model.as_str(),
                        families::summary(ev)
                    ),
                    source: FindingSource::Anomaly {
                        model: model.as_str().into(),
                        key: key.clone(),
                    },
                    severity: model.severity(),
                    subject: key.clone(),
                    account: None,
                });
            }
        }
        out
    }

    /// Counts a candidate and, unless the same (source, subject) was reported inside the suppression
    /// window, keeps it as a part of the process's finding.
    fn accept(&mut self, c: Candidate, ev: &Arc<Event>, now: SystemTime) -> Option<Part> {
        let reason = match c.source {
            FindingSource::Rule { .. } => FindingReason::rule,
            FindingSource::Anomaly { .. } => FindingReason::baseline,
            FindingSource::Tamper { .. } => FindingReason::tamper,
        };
        self.metrics
            .finding_occurrences
            .get_or_create(&ReasonLabels { reason })
            .inc();
        if self.learned_benign(&c, now) {
            self.metrics
                .findings_suppressed
                .get_or_create(&SuppressedLabels {
                    reason: SuppressReason::learned,
                })
                .inc();
            return None;
        }
        let dedup_key = (c.source.name(), c.subject);
        let window = if c.severity >= crate::model::Severity::high {
            self.high_suppression
        } else {
            self.suppression
        };
        if let Some(at) = self.reported.get(&dedup_key) {
            if now.duration_since(*at).unwrap_or_default() < window {
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
            let window = self.suppression.max(self.high_suppression);
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
            FindingSource::Tamper { .. } => {}
            FindingSource::Anomaly { model, .. } => {
                if let Some(model) = Model::parse(model) {
                    self.metrics
                        .anomalies
                        .get_or_create(&ModelSeverityLabels { model, severity })
                        .inc();
                }
            }
        }
        Some(Part {
            source: c.source,
            severity,
            summary: c.summary,
            event: ev.clone(),
            account: c.account,
        })
    }

    /// Suppression that learns: an info or low rule match is a `rule_match` key (rule and subject). While
    /// learning it is recorded; in monitor mode a learned or accepted one is not reported again (a new
    /// one is reported and kept as `seen_in_monitor`, so `tripline baseline accept` can accept it).
    /// Higher severities are never learned away.
    fn learned_benign(&self, c: &Candidate, now: SystemTime) -> bool {
        let FindingSource::Rule { id, .. } = &c.source else {
            return false;
        };
        if c.severity > crate::model::Severity::low {
            return false;
        }
        let mut b = self
            .shared
            .baselines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !b.enabled.contains(&Model::RuleMatch) {
            return false;
        }
        let key = format!("{id} | {}", c.subject);
        let state = b.baseline.state_of(Model::RuleMatch, &key);
        if matches!(state, Some("learned" | "accepted")) {
            return true;
        }
        if state.is_none() {
            b.observe(Model::RuleMatch, &key, now);
        }
        false
    }

    /// Closed incidents to findings: one each, led by the strongest part; threat level and API ring.
    fn findings(&mut self, closed: Vec<Vec<Part>>, now: SystemTime) -> Vec<Arc<Finding>> {
        let mut out = Vec::new();
        for parts in closed {
            // The first part of the highest severity leads.
            let Some(lead) = parts
                .iter()
                .enumerate()
                .max_by_key(|(i, p)| (p.severity, std::cmp::Reverse(*i)))
                .map(|(_, p)| p.clone())
            else {
                continue;
            };
            let summary = match parts.len() {
                1 => lead.summary.clone(),
                n => format!("{} (and {} more)", lead.summary, n - 1),
            };
            self.seq += 1;
            let f = Arc::new(Finding {
                id: format!("{:016x}-{:x}", lead.event.ktime_ns, self.seq),
                time: parts[0].event.time,
                severity: lead.severity,
                source: lead.source.clone(),
                summary,
                event: lead.event.clone(),
                account: parts
                    .iter()
                    .find_map(|p| p.account.clone().filter(|_| p.source == lead.source))
                    .or_else(|| parts.iter().find_map(|p| p.account.clone())),
                parts,
            });
            self.publish(&f, now);
            out.push(f);
        }
        if !out.is_empty() {
            self.update_gauges();
        }
        out
    }

    /// Records a finding raised outside the event stream (tamper evidence): kept for the API and
    /// counted in the threat level, never deduplicated away.
    pub fn record_external(&mut self, f: Arc<Finding>, now: SystemTime) {
        self.metrics
            .finding_occurrences
            .get_or_create(&ReasonLabels {
                reason: FindingReason::tamper,
            })
            .inc();
        self.publish(&f, now);
    }

    /// A finding is out: counted by severity, in the threat level, kept for the API.
    fn publish(&self, f: &Arc<Finding>, now: SystemTime) {
        self.metrics
            .findings
            .get_or_create(&SeverityLabels {
                severity: f.severity,
            })
            .inc();
        self.shared
            .threat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(now, f.severity, &f.source.name());
        self.shared
            .findings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(now, f.clone());
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
            EventKind::Exit => {
                if self.network_facing.get(&p.pid) == Some(&p.start_ns) {
                    self.network_facing.remove(&p.pid);
                }
                self.recent_connects.remove(&p.pid);
            }
            EventKind::Connect if ev.net().is_some_and(|n| n.succeeded()) => {
                if self.recent_connects.len() >= MAX_NETWORK_FACING {
                    self.recent_connects.clear();
                }
                self.recent_connects
                    .insert(p.pid, (p.start_ns, ev.ktime_ns));
            }
            _ => {}
        }
        let parent_network_facing = ev.parent.as_ref().is_some_and(|par| {
            self.network_facing
                .get(&par.pid)
                .is_some_and(|s| same_start(*s, par.start_ns))
        });
        // exec keeps the pid and the start time: a connect by the same process just before.
        let connected_before = matches!(ev.kind, EventKind::Exec | EventKind::StdioSocket)
            && self.recent_connects.get(&p.pid).is_some_and(|(start, at)| {
                same_start(*start, p.start_ns)
                    && ev.ktime_ns.saturating_sub(*at) <= CONNECT_BEFORE_NS
            });
        Context {
            parent_network_facing,
            stdio_socket: p.stdio_socket,
            connected_before,
            lifecycle_signal: lifecycle_signal(ev),
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
        self.absorb_file_changes();
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
                self.metrics.baseline_write_errors.inc();
                tracing::warn!(error = %e, "could not persist the baseline");
            }
        }
    }

    /// Writes the baseline to its file (when configured and changed).
    pub fn persist(&mut self) -> anyhow::Result<()> {
        let Some(path) = self.baseline_file.clone() else {
            return Ok(());
        };
        self.absorb_file_changes();
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
        b.baseline.save(&path)?;
        b.dirty = false;
        self.file_mtime = mtime(&path);
        Ok(())
    }

    /// When someone else wrote the baseline file since we last did (`tripline baseline accept` on the
    /// live file), their accepted and learned keys join the running model before anything is saved, so
    /// an accept is never undone and stops the anomalies it covers at once.
    fn absorb_file_changes(&mut self) {
        let Some(path) = &self.baseline_file else {
            return;
        };
        let now = mtime(path);
        if now.is_none() || now == self.file_mtime {
            return;
        }
        self.file_mtime = now;
        match Baseline::read(path) {
            Ok(disk) => {
                let mut b = self
                    .shared
                    .baselines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let n = b.baseline.absorb(&disk);
                if n > 0 {
                    b.dirty = true;
                    tracing::info!(keys = n, file = %path.display(), "baseline file changed on disk: took in accepted and learned keys");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "baseline file changed on disk but cannot be read; keeping the running model")
            }
        }
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

/// Where the detection loop sends what it saw and found (the sinks).
pub trait Output {
    fn event(&mut self, ev: &Arc<Event>);
    fn finding(&mut self, f: &Finding);
}

/// The detection stage's loop: every event from `rx` to `out` and through the engine; findings
/// to `out` as their correlation window closes; `Engine::tick` about once a second; at the end
/// (when `rx` closes) every pending finding and the baseline.
pub async fn run(
    mut engine: Engine,
    mut rx: tokio::sync::mpsc::Receiver<Arc<Event>>,
    out: &mut impl Output,
    mut tamper: tokio::sync::mpsc::Receiver<crate::tamper::Tamper>,
    tamper_metrics: crate::tamper::TamperMetrics,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut seq = 0u64;
    loop {
        let findings = tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                out.event(&ev);
                engine.process(&ev)
            }
            Some(t) = tamper.recv() => {
                seq += 1;
                tamper_metrics.count(&t);
                let f = Arc::new(tamper_finding(&t, seq));
                engine.record_external(f.clone(), SystemTime::now());
                vec![f]
            }
            _ = tick.tick() => {
                let now = SystemTime::now();
                engine.tick(now);
                tamper_metrics.heartbeat.set(crate::tamper::unix_now());
                let mut due = engine.flush_at(now);
                due.extend(engine.recheck_accounts(now));
                due
            }
        };
        findings.iter().for_each(|f| out.finding(f));
    }
    engine.flush_all().iter().for_each(|f| out.finding(f));
    if let Err(e) = engine.persist() {
        tracing::error!(error = %e, "could not persist the baseline at shutdown");
    }
}

/// The finding for a piece of tamper evidence (its subject is tripline itself).
pub fn tamper_finding(t: &crate::tamper::Tamper, seq: u64) -> Finding {
    let me = std::process::id();
    let exe = std::fs::read_link("/proc/self/exe")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let now = SystemTime::now();
    let event = Arc::new(Event {
        kind: EventKind::SignalSelf,
        ktime_ns: 0,
        time: now,
        process: crate::model::Process {
            pid: me,
            tid: me,
            exe: exe.into(),
            comm: "tripline".into(),
            ..crate::model::Process::default()
        },
        parent: None,
        ancestors: Default::default(),
        data: EventData::Exit { status: 0 },
        wire_flags: 0,
    });
    let source = FindingSource::Tamper {
        reason: t.reason.as_str(),
        detail: t.detail.clone(),
        gap_seconds: t.gap.map(|g| g.as_secs()),
    };
    let summary = format!("tamper_{}: {}", t.reason.as_str(), t.detail);
    let severity = t.reason.severity();
    Finding {
        id: format!(
            "tamper-{}-{seq:x}",
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ),
        time: now,
        severity,
        source: source.clone(),
        summary: summary.clone(),
        event: event.clone(),
        account: None,
        parts: vec![Part {
            source,
            severity,
            summary,
            event,
            account: None,
        }],
    }
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Start times from the kernel (ns) and from procfs (ticks × 10 ms) agree to the tick.
fn same_start(a: u64, b: u64) -> bool {
    a / 10_000_000 == b / 10_000_000
}

/// What a rule finding is about, for deduplication: the program, its parent and the shape of its
/// arguments (and a listen port). The same benign command repeating is one finding per suppression
/// window; a new command line shape is new.
fn subject(ev: &Event) -> String {
    let parent = ev.parent.as_ref().map(|p| p.program()).unwrap_or("");
    let extra = match &ev.data {
        EventData::Net(n) if ev.kind == EventKind::Listen => format!("|{}", n.local.port()),
        // A second file changed by the same program is news, not a repeat.
        EventData::File(f) => format!("|{}", f.new_path.as_deref().unwrap_or(&f.path)),
        _ => String::new(),
    };
    format!(
        "{}|{parent}|{}{extra}",
        ev.process.program(),
        args_shape(&ev.process.args)
    )
}

/// argv without what changes on every run: digits become `0`, long hex/base64-like tokens `*`; at most
/// eight arguments of 64 characters after argv[0].
pub fn args_shape(args: &[String]) -> String {
    let mut out = String::new();
    for a in args.iter().skip(1).take(8) {
        if !out.is_empty() {
            out.push(' ');
        }
        let token_like = a.len() >= 16
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
            && a.chars().any(|c| c.is_ascii_digit());
        if token_like {
            out.push('*');
            continue;
        }
        let mut last_digit = false;
        for c in a.chars().take(64) {
            if c.is_ascii_digit() {
                if !last_digit {
                    out.push('0');
                }
                last_digit = true;
            } else {
                out.push(c);
                last_digit = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
