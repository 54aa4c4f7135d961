//! The rule language: a small, typed, validated YAML policy.
//!
//! A rule matches when every condition in `match` holds (values inside one condition are alternatives),
//! at least one block of `any_of` holds (when given), and no block of `except` holds.
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use std::cell::{OnceCell, RefCell};
use std::sync::Arc;

use globset::{Candidate, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use regex::Regex;
use serde::Deserialize;

use crate::model::account::{AccountChange, AccountChangeKind};
use crate::model::{file_name, Event, EventData, EventKind, Severity, Text};

/// The policy used when no `detect.policy_file` is configured.
pub const DEFAULT_POLICY: &str = include_str!("../../policy/default.yml");

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    #[error("{path}: {count} rules; at most {max} are allowed")]
    TooManyRules {
        path: String,
        count: usize,
        max: usize,
    },
    #[error("{path}:{line}: rule {rule:?}: {field}: {message}")]
    Invalid {
        path: String,
        line: usize,
        rule: String,
        field: String,
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default = "default_ruleset")]
    name: String,
    rules: Vec<RawRule>,
}

fn default_ruleset() -> String {
    "custom".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    description: String,
    severity: Severity,
    /// MITRE ATT&CK tactic, e.g. `execution`.
    tactic: String,
    #[serde(default)]
    techniques: Vec<String>,
    #[serde(rename = "match")]
    matches: RawConditions,
    #[serde(default)]
    any_of: Vec<RawConditions>,
    #[serde(default)]
    except: Vec<RawConditions>,
    /// Fire only when this many matching events (or distinct values) come from one process within a
    /// window: scans, brute force.
    threshold: Option<RawThreshold>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    count: usize,
    #[serde(with = "humantime_serde")]
    within: std::time::Duration,
    /// Count distinct values of this field instead of events.
    distinct: Option<DistinctField>,
}

/// A field a threshold counts distinct values of.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DistinctField {
    PeerPort,
    PeerAddress,
    LocalPort,
    FilePath,
}

/// A compiled `threshold:`: `count` events (or distinct values of `distinct`) from one process within
/// `within`.
#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    pub count: usize,
    pub within: std::time::Duration,
    pub distinct: Option<DistinctField>,
}

/// Conditions on event fields. Every listed field must match; a list matches when any value does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConditions {
    kind: Option<Vec<String>>,
    exe_path: Option<Vec<String>>,
    exe_name: Option<Vec<String>>,
    parent_path: Option<Vec<String>>,
    parent_name: Option<Vec<String>>,
    ancestor_path: Option<Vec<String>>,
    ancestor_name: Option<Vec<String>>,
    /// The parent (or, with `ancestor_network_facing`, any ancestor) has listened or accepted on TCP.
    parent_network_facing: Option<bool>,
    /// The script an interpreter runs (`bash /tmp/x.sh`, a `#!` script), canonical.
    script_path: Option<Vec<String>>,
    /// exec events: the path as passed to execve (`/dev/fd/3` for fexecve), as the caller spelled it.
    exec_filename: Option<Vec<String>>,
    /// The process's stdin and stdout are both sockets (checked at exec and connect): a shell or
    /// interpreter wired to the network.
    stdio_socket: Option<bool>,
    /// An exec, or a socket duplicated onto stdio, by a process that made a successful outbound connect
    /// moments before (same process). `connected_before_exec` is its older name.
    #[serde(alias = "connected_before_exec")]
    connected_before: Option<bool>,
    /// A stop signal (TERM, INT, HUP) to tripline from its service manager, its parent or an operator of
    /// its own uid in a login session: its own life cycle, not an attack.
    lifecycle_signal: Option<bool>,
    uid: Option<Vec<u32>>,
    euid: Option<Vec<u32>>,
    /// Effective user names, resolved to uids when the policy loads.
    user: Option<Vec<String>>,
    args_contain: Option<Vec<String>>,
    args_regex: Option<String>,
    peer_port: Option<Vec<u16>>,
    local_port: Option<Vec<u16>>,
    peer_cidr: Option<Vec<String>>,
    /// File events: the path changed (or a rename/link's new name). `**` crosses directories.
    file_path: Option<Vec<String>>,
    /// priv_change events: the effective uid after a successful setuid-family call.
    new_euid: Option<Vec<u32>>,
    /// file_write events: opened with O_TRUNC and without O_APPEND, or cut by truncate(2)/ftruncate(2)
    /// (the content was thrown away).
    file_truncated: Option<bool>,
    /// Changes to the account databases found by diffing them after the event (detect::accounts).
    account_change: Option<Vec<String>>,
    result: Option<ResultCond>,
    /// File events kept by the kernel because the mode sets setuid/setgid (any path).
    setid_mode: Option<bool>,
    /// file_xattr events: the attribute name (glob), e.g. `security.capability`.
    xattr_name: Option<Vec<String>>,
    /// sensitive_read events: the class read (account_shadow, sudoers, ssh_private_key, …).
    sensitive_class: Option<Vec<String>>,
    /// File events: the operation (`openat`, `ftruncate`, `io_uring`, …).
    file_operation: Option<Vec<String>>,
}

impl RawConditions {
    /// The first attacker-controlled field (names, argv) when the block has no verified identity field
    /// (canonical paths, uids) beside it.
    fn attacker_controlled_only(&self) -> Option<&'static str> {
        let verified = self.exe_path.is_some()
            || self.parent_path.is_some()
            || self.ancestor_path.is_some()
            || self.script_path.is_some()
            || self.uid.is_some()
            || self.euid.is_some()
            || self.user.is_some();
        if verified {
            return None;
        }
        [
            ("exe_name", self.exe_name.is_some()),
            ("parent_name", self.parent_name.is_some()),
            ("ancestor_name", self.ancestor_name.is_some()),
            ("exec_filename", self.exec_filename.is_some()),
            ("args_contain", self.args_contain.is_some()),
            ("args_regex", self.args_regex.is_some()),
        ]
        .into_iter()
        .find(|(_, present)| *present)
        .map(|(name, _)| name)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResultCond {
    Success,
    Failure,
}

#[derive(Debug)]
pub struct Conditions {
    kind: Option<Vec<EventKind>>,
    exe_path: Option<FieldGlob>,
    exe_name: Option<FieldGlob>,
    /// On exec events `exe_name` also matches the file name executed: on the matching side only.
    exe_name_as_started: bool,
    parent_path: Option<FieldGlob>,
    parent_name: Option<FieldGlob>,
    ancestor_path: Option<FieldGlob>,
    ancestor_name: Option<FieldGlob>,
    parent_network_facing: Option<bool>,
    script_path: Option<FieldGlob>,
    exec_filename: Option<FieldGlob>,
    stdio_socket: Option<bool>,
    connected_before: Option<bool>,
    lifecycle_signal: Option<bool>,
    uid: Option<Vec<u32>>,
    euid: Option<Vec<u32>>,
    args_contain: Option<Vec<String>>,
    args_regex: Option<Regex>,
    peer_port: Option<Vec<u16>>,
    local_port: Option<Vec<u16>>,
    peer_cidr: Option<Vec<IpNet>>,
    file_path: Option<FieldGlob>,
    new_euid: Option<Vec<u32>>,
    file_truncated: Option<bool>,
    account_change: Option<Vec<AccountChangeKind>>,
    result: Option<ResultCond>,
    setid_mode: Option<bool>,
    xattr_name: Option<GlobSet>,
    sensitive_class: Option<Vec<tripline_common::SensitiveClass>>,
    file_operation: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub severity: Severity,
    pub tactic: String,
    pub techniques: Vec<String>,
    conditions: Conditions,
    any_of: Vec<Conditions>,
    except: Vec<Conditions>,
    pub threshold: Option<Threshold>,
}

#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub rules: Vec<Rule>,
    /// How many globs each [`Field`] has across the policy (the slots of [`FieldGlob`]).
    slots: [usize; Field::ALL.len()],
}

/// The process strings most glob conditions test. An event's answer for every glob of a field in the
/// whole policy is worked out at once per distinct string and remembered ([`GlobMemo`]): a host runs
/// few distinct executables, so a rule's test on them is a bit test, not a glob match per rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    ExePath,
    ExeName,
    ParentPath,
    ParentName,
    AncestorPath,
    AncestorName,
    ScriptPath,
    ExecFilename,
    FilePath,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::ExePath,
        Field::ExeName,
        Field::ParentPath,
        Field::ParentName,
        Field::AncestorPath,
        Field::AncestorName,
        Field::ScriptPath,
        Field::ExecFilename,
        Field::FilePath,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// A list of strings (any of them may match) rather than one.
    fn is_list(self) -> bool {
        matches!(
            self,
            Field::AncestorPath | Field::AncestorName | Field::FilePath
        )
    }
}

/// A glob condition on a [`Field`]: the set, and its slot among every glob of that field in the policy.
#[derive(Debug)]
struct FieldGlob {
    set: GlobSet,
    slot: usize,
}

impl FieldGlob {
    /// Whether a string whose answers are `bits` matches this glob.
    fn hit(&self, bits: &[u64]) -> bool {
        bits.get(self.slot / 64)
            .is_some_and(|w| w >> (self.slot % 64) & 1 == 1)
    }
}

/// Remembered answers: per field, a string → the bit set of the field's globs it matches. Bounded: a
/// field's map that reaches [`GLOB_MEMO_MAX`] strings starts over (a cost, never a wrong answer).
#[derive(Debug, Default)]
pub struct GlobMemo {
    maps: [foldhash::HashMap<Box<str>, Arc<[u64]>>; Field::ALL.len()],
}

/// Strings remembered per field.
pub const GLOB_MEMO_MAX: usize = 4096;

impl GlobMemo {
    /// `s`'s answers for every glob of `field` in `policy`.
    fn answer(&mut self, policy: &Policy, field: Field, s: &str) -> Arc<[u64]> {
        let map = &mut self.maps[field.index()];
        if let Some(bits) = map.get(s) {
            return bits.clone();
        }
        let mut bits = vec![0u64; policy.slots[field.index()].div_ceil(64)];
        let c = Candidate::new(s);
        for g in policy
            .rules
            .iter()
            .flat_map(Rule::blocks)
            .filter_map(|b| b.glob(field))
        {
            if g.set.is_match_candidate(&c) {
                bits[g.slot / 64] |= 1 << (g.slot % 64);
            }
        }
        if map.len() >= GLOB_MEMO_MAX {
            map.clear();
        }
        let bits: Arc<[u64]> = bits.into();
        map.insert(s.into(), bits.clone());
        bits
    }
}

/// What the engine knows about an event besides the event itself.
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub parent_network_facing: bool,
    pub stdio_socket: bool,
    pub connected_before: bool,
    pub lifecycle_signal: bool,
    /// One change to the account databases this event made (rules with `account_change:` are tried
    /// once per change; every other rule sees `None`).
    pub account: Option<AccountChange>,
}

impl Policy {
    pub fn load(path: Option<&Path>) -> Result<Policy, PolicyError> {
        match path {
            None => Policy::parse(DEFAULT_POLICY, "<embedded default policy>"),
            Some(p) => {
                let text =
                    crate::limits::read_bounded(p, crate::limits::MAX_POLICY_BYTES, "policy")?;
                Policy::parse(&text, &p.display().to_string())
            }
        }
    }

    // Long on purpose: each check of a raw rule is a few lines with its own error; kept in rule order.
    pub fn parse(text: &str, path: &str) -> Result<Policy, PolicyError> {
        crate::limits::check_nesting(text, path, crate::limits::MAX_NESTING)?;
        let raw: RawPolicy = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let msg = e.to_string();
            let message = msg
                .rfind(" at line ")
                .map(|i| msg[..i].to_string())
                .unwrap_or(msg);
            PolicyError::Syntax {
                path: path.to_string(),
                line,
                column,
                message,
            }
        })?;
        if raw.rules.len() > crate::limits::MAX_RULES {
            return Err(PolicyError::TooManyRules {
                path: path.to_string(),
                count: raw.rules.len(),
                max: crate::limits::MAX_RULES,
            });
        }
        // One pass over the text for every rule's line (a per-rule scan made parsing quadratic).
        let lines = id_lines(text);
        let mut rules = Vec::new();
        let mut slots = [0; Field::ALL.len()];
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for r in raw.rules {
            let nth = seen.get(&r.id).copied().unwrap_or(0);
            let line = lines
                .get(r.id.as_str())
                .and_then(|v| v.get(nth))
                .copied()
                .unwrap_or(0);
            let invalid = |field: &str, message: String| PolicyError::Invalid {
                path: path.to_string(),
                line,
                rule: r.id.clone(),
                field: field.to_string(),
                message,
            };
            if r.id.is_empty()
                || !r
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(invalid("id", "must be non-empty and use only letters, digits, '_' and '-' (it is a metric label value)".into()));
            }
            if seen.insert(r.id.clone(), nth + 1).is_some() {
                return Err(invalid("id", "duplicate rule id".into()));
            }
            for t in &r.techniques {
                let ok = t.len() >= 5
                    && t.starts_with('T')
                    && t[1..]
                        .split('.')
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    return Err(invalid(
                        "techniques",
                        format!(
                            "{t:?} is not a MITRE ATT&CK technique id (e.g. T1059 or T1059.004)"
                        ),
                    ));
                }
            }
            if !TACTICS.contains(&r.tactic.as_str()) {
                return Err(invalid(
                    "tactic",
                    format!(
                        "{:?} is not a MITRE ATT&CK tactic; allowed: {}",
                        r.tactic,
                        TACTICS.join(", ")
                    ),
                ));
            }
            if r.matches.is_empty() {
                return Err(invalid(
                    "match",
                    "must hold at least one condition (an empty match would match every event)"
                        .into(),
                ));
            }
            for (name, blocks) in [("any_of", &r.any_of), ("except", &r.except)] {
                if let Some(i) = blocks.iter().position(RawConditions::is_empty) {
                    return Err(invalid(
                        &format!("{name}[{i}]"),
                        "an empty block is not allowed: give at least one condition".into(),
                    ));
                }
            }
            if let Some(field) = r.matches.empty_list().or_else(|| {
                r.any_of
                    .iter()
                    .chain(&r.except)
                    .find_map(RawConditions::empty_list)
            }) {
                return Err(invalid(
                    field,
                    "an empty list never matches: give at least one value or remove the condition"
                        .into(),
                ));
            }
            let conditions = compile(&r.matches, "match", Side::Match, &mut slots, &invalid)?;
            let any_of = r
                .any_of
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    compile(
                        c,
                        &format!("any_of[{i}]"),
                        Side::Match,
                        &mut slots,
                        &invalid,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            for (i, c) in r.except.iter().enumerate() {
                if let Some(field) = c.attacker_controlled_only() {
                    return Err(invalid(
                        &format!("except[{i}].{field}"),
                        "an exception must not rest on names or arguments alone (any process can copy a \
                         binary under any name, set its comm or choose its argv): add a verified field \
                         to the same block — exe_path, parent_path, ancestor_path, script_path, uid, euid \
                         or user"
                            .into(),
                    ));
                }
            }
            let except = r
                .except
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    compile(
                        c,
                        &format!("except[{i}]"),
                        Side::Except,
                        &mut slots,
                        &invalid,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let threshold = match &r.threshold {
                None => None,
                Some(t) if t.count < 2 || t.within.is_zero() => {
                    return Err(invalid(
                        "threshold",
                        "count must be at least 2 and within longer than 0s".into(),
                    ))
                }
                Some(t) => Some(Threshold {
                    count: t.count,
                    within: t.within,
                    distinct: t.distinct,
                }),
            };
            rules.push(Rule {
                id: r.id,
                description: r.description,
                severity: r.severity,
                tactic: r.tactic,
                techniques: r.techniques,
                conditions,
                any_of,
                except,
                threshold,
            });
        }
        Ok(Policy {
            name: raw.name,
            rules,
            slots,
        })
    }
}

/// MITRE ATT&CK enterprise tactics, as rule `tactic` values.
pub const TACTICS: &[&str] = &[
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// The lines where `id: <rule id>` appears (block or flow style), for every id, in one pass over
/// the text (for error messages).
fn id_lines(text: &str) -> std::collections::HashMap<&str, Vec<usize>> {
    let mut out: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (i, l) in text.lines().enumerate() {
        let t = l
            .trim_start()
            .trim_start_matches("- ")
            .trim_start_matches('{')
            .trim_start();
        if let Some(v) = t.strip_prefix("id:") {
            let v = v.split([',', '}', '#']).next().unwrap_or("");
            out.entry(v.trim().trim_matches(|c| c == '"' || c == '\''))
                .or_default()
                .push(i + 1);
        }
    }
    out
}

impl RawConditions {
    fn is_empty(&self) -> bool {
        self.empty_list().is_none() && self.fields() == 0
    }

    /// How many conditions are given.
    fn fields(&self) -> usize {
        [
            self.kind.is_some(),
            self.exe_path.is_some(),
            self.exe_name.is_some(),
            self.parent_path.is_some(),
            self.parent_name.is_some(),
            self.ancestor_path.is_some(),
            self.ancestor_name.is_some(),
            self.parent_network_facing.is_some(),
            self.script_path.is_some(),
            self.exec_filename.is_some(),
            self.stdio_socket.is_some(),
            self.connected_before.is_some(),
            self.lifecycle_signal.is_some(),
            self.uid.is_some(),
            self.euid.is_some(),
            self.user.is_some(),
            self.args_contain.is_some(),
            self.args_regex.is_some(),
            self.peer_port.is_some(),
            self.local_port.is_some(),
            self.peer_cidr.is_some(),
            self.file_path.is_some(),
            self.new_euid.is_some(),
            self.file_truncated.is_some(),
            self.account_change.is_some(),
            self.result.is_some(),
            self.setid_mode.is_some(),
            self.xattr_name.is_some(),
            self.sensitive_class.is_some(),
            self.file_operation.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count()
    }

    /// The first condition given as an empty list (which could never match).
    fn empty_list(&self) -> Option<&'static str> {
        let s = |v: &Option<Vec<String>>| v.as_ref().is_some_and(Vec::is_empty);
        let n = |v: &Option<Vec<u32>>| v.as_ref().is_some_and(Vec::is_empty);
        let p = |v: &Option<Vec<u16>>| v.as_ref().is_some_and(Vec::is_empty);
        [
            ("kind", s(&self.kind)),
            ("exe_path", s(&self.exe_path)),
            ("exe_name", s(&self.exe_name)),
            ("parent_path", s(&self.parent_path)),
            ("parent_name", s(&self.parent_name)),
            ("ancestor_path", s(&self.ancestor_path)),
            ("ancestor_name", s(&self.ancestor_name)),
            ("script_path", s(&self.script_path)),
            ("exec_filename", s(&self.exec_filename)),
            ("uid", n(&self.uid)),
            ("euid", n(&self.euid)),
            ("user", s(&self.user)),
            ("args_contain", s(&self.args_contain)),
            ("peer_port", p(&self.peer_port)),
            ("local_port", p(&self.local_port)),
            ("peer_cidr", s(&self.peer_cidr)),
            ("file_path", s(&self.file_path)),
            ("new_euid", n(&self.new_euid)),
            ("account_change", s(&self.account_change)),
            ("xattr_name", s(&self.xattr_name)),
            ("sensitive_class", s(&self.sensitive_class)),
            ("file_operation", s(&self.file_operation)),
        ]
        .into_iter()
        .find(|(_, empty)| *empty)
        .map(|(f, _)| f)
    }
}

fn globs(
    values: &Option<Vec<String>>,
    field: &str,
    invalid: &dyn Fn(&str, String) -> PolicyError,
) -> Result<Option<GlobSet>, PolicyError> {
    let Some(values) = values else {
        return Ok(None);
    };
    let mut b = GlobSetBuilder::new();
    for v in values {
        let g = globset::GlobBuilder::new(v)
            .literal_separator(field.ends_with("path"))
            .build()
            .map_err(|e| invalid(field, format!("{v:?} is not a valid glob: {e}")))?;
        b.add(g);
    }
    b.build()
        .map(Some)
        .map_err(|e| invalid(field, e.to_string()))
}

/// [`globs`] for a [`Field`]: the set takes the field's next slot.
fn field_globs(
    values: &Option<Vec<String>>,
    name: &str,
    field: Field,
    slots: &mut [usize; Field::ALL.len()],
    invalid: &dyn Fn(&str, String) -> PolicyError,
) -> Result<Option<FieldGlob>, PolicyError> {
    Ok(globs(values, name, invalid)?.map(|set| {
        let slot = &mut slots[field.index()];
        *slot += 1;
        FieldGlob {
            set,
            slot: *slot - 1,
        }
    }))
}

// Long on purpose: one line (or small block) per condition field, in the order of `RawConditions`.
/// Which side of a rule a block is on: what makes it match, or what excuses an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Match,
    Except,
}

fn compile(
    raw: &RawConditions,
    block: &str,
    side: Side,
    slots: &mut [usize; Field::ALL.len()],
    invalid: &dyn Fn(&str, String) -> PolicyError,
) -> Result<Conditions, PolicyError> {
    let f = |name: &str| format!("{block}.{name}");
    let kind = match &raw.kind {
        None => None,
        Some(kinds) => Some(
            kinds
                .iter()
                .map(|k| {
                    EventKind::parse(k).ok_or_else(|| {
                        let allowed: Vec<&str> =
                            EventKind::ALL.iter().map(|k| k.as_str()).collect();
                        invalid(
                            &f("kind"),
                            format!(
                                "{k:?} is not an event kind; allowed: {}",
                                allowed.join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let args_regex = match &raw.args_regex {
        None => None,
        Some(r) => Some(
            Regex::new(r).map_err(|e| invalid(&f("args_regex"), format!("invalid regex: {e}")))?,
        ),
    };
    let peer_cidr = match &raw.peer_cidr {
        None => None,
        Some(v) => Some(
            v.iter()
                .map(|c| {
                    c.parse::<IpNet>()
                        .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            invalid(
                                &f("peer_cidr"),
                                format!("{c:?} is not a CIDR (e.g. 10.0.0.0/8, ::1/128)"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let mut euid = raw.euid.clone();
    if let Some(users) = &raw.user {
        let mut uids = euid.unwrap_or_default();
        for u in users {
            match nix::unistd::User::from_name(u) {
                Ok(Some(user)) => uids.push(user.uid.as_raw()),
                _ => {
                    tracing::warn!(user = %u, "policy names a user this host does not have; that value never matches")
                }
            }
        }
        euid = Some(uids);
    }
    Ok(Conditions {
        kind,
        exe_path: field_globs(
            &raw.exe_path,
            &f("exe_path"),
            Field::ExePath,
            slots,
            invalid,
        )?,
        exe_name: field_globs(
            &raw.exe_name,
            &f("exe_name"),
            Field::ExeName,
            slots,
            invalid,
        )?,
        exe_name_as_started: side == Side::Match,
        parent_path: field_globs(
            &raw.parent_path,
            &f("parent_path"),
            Field::ParentPath,
            slots,
            invalid,
        )?,
        parent_name: field_globs(
            &raw.parent_name,
            &f("parent_name"),
            Field::ParentName,
            slots,
            invalid,
        )?,
        ancestor_path: field_globs(
            &raw.ancestor_path,
            &f("ancestor_path"),
            Field::AncestorPath,
            slots,
            invalid,
        )?,
        ancestor_name: field_globs(
            &raw.ancestor_name,
            &f("ancestor_name"),
            Field::AncestorName,
            slots,
            invalid,
        )?,
        parent_network_facing: raw.parent_network_facing,
        script_path: field_globs(
            &raw.script_path,
            &f("script_path"),
            Field::ScriptPath,
            slots,
            invalid,
        )?,
        exec_filename: field_globs(
            &raw.exec_filename,
            &f("exec_filename"),
            Field::ExecFilename,
            slots,
            invalid,
        )?,
        stdio_socket: raw.stdio_socket,
        connected_before: raw.connected_before,
        lifecycle_signal: raw.lifecycle_signal,
        uid: raw.uid.clone(),
        euid,
        args_contain: raw.args_contain.clone(),
        args_regex,
        peer_port: raw.peer_port.clone(),
        local_port: raw.local_port.clone(),
        peer_cidr,
        file_path: field_globs(
            &raw.file_path,
            &f("file_path"),
            Field::FilePath,
            slots,
            invalid,
        )?,
        new_euid: raw.new_euid.clone(),
        file_truncated: raw.file_truncated,
        account_change: match &raw.account_change {
            None => None,
            Some(v) => Some(
                v.iter()
                    .map(|c| {
                        AccountChangeKind::parse(c).ok_or_else(|| {
                            let allowed: Vec<&str> =
                                AccountChangeKind::ALL.iter().map(|k| k.as_str()).collect();
                            invalid(
                                &f("account_change"),
                                format!(
                                    "{c:?} is not an account change; allowed: {}",
                                    allowed.join(", ")
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        },
        result: raw.result,
        setid_mode: raw.setid_mode,
        xattr_name: globs(&raw.xattr_name, &f("xattr_name"), invalid)?,
        sensitive_class: match &raw.sensitive_class {
            None => None,
            Some(v) => Some(
                v.iter()
                    .map(|c| {
                        tripline_common::SensitiveClass::ALL
                            .iter()
                            .copied()
                            .find(|k| k.as_str() == c)
                            .ok_or_else(|| {
                                let allowed: Vec<&str> = tripline_common::SensitiveClass::ALL
                                    .iter()
                                    .map(|k| k.as_str())
                                    .collect();
                                invalid(
                                    &f("sensitive_class"),
                                    format!(
                                        "{c:?} is not a sensitive class; allowed: {}",
                                        allowed.join(", ")
                                    ),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        },
        file_operation: raw.file_operation.clone(),
    })
}

/// What the rules tried on one event share, built on first use: each [`Field`]'s answers from the memo
/// and the argv line. Without a memo (a rule tried on its own) each glob is matched directly.
pub struct EventStrings<'a> {
    pub ev: &'a Event,
    /// The policy and the engine's memo: [`Field`] globs answered by bit tests. `None`: each glob is
    /// matched against the string (one rule tried on its own).
    memo: Option<(&'a Policy, &'a RefCell<GlobMemo>)>,
    /// Per single-string [`Field`]: the string's answers (`None`: the event has no such string).
    one: [OnceCell<Option<Arc<[u64]>>>; Field::ALL.len()],
    /// Per list [`Field`]: every string's answers.
    many: [OnceCell<Vec<Arc<[u64]>>>; Field::ALL.len()],
    /// The `exe_name` answers of the file name an exec was started by.
    started_as: OnceCell<Option<Arc<[u64]>>>,
    args_line: OnceCell<String>,
}

impl<'a> EventStrings<'a> {
    pub fn new(ev: &'a Event) -> EventStrings<'a> {
        EventStrings {
            ev,
            memo: None,
            one: Default::default(),
            many: Default::default(),
            started_as: OnceCell::new(),
            args_line: OnceCell::new(),
        }
    }

    /// [`EventStrings::new`] answering [`Field`] globs from `memo` (filled from `policy`'s globs).
    pub fn with_memo(
        ev: &'a Event,
        policy: &'a Policy,
        memo: &'a RefCell<GlobMemo>,
    ) -> EventStrings<'a> {
        EventStrings {
            memo: Some((policy, memo)),
            ..EventStrings::new(ev)
        }
    }

    /// The string a single-string field tests (`None`: the event has none).
    fn field_str(&self, f: Field) -> Option<&'a str> {
        let p = &self.ev.process;
        match f {
            Field::ExePath => Some(p.exe.as_str()),
            Field::ExeName => Some(p.exe_name()),
            Field::ParentPath => self.parent_path(),
            Field::ParentName => self.parent_path().map(file_name),
            Field::ScriptPath => p.script.as_deref(),
            Field::ExecFilename => match &self.ev.data {
                EventData::Exec { filename, .. } => Some(filename.as_str()),
                _ => None,
            },
            Field::AncestorPath | Field::AncestorName | Field::FilePath => None,
        }
    }

    /// The strings a list field tests.
    fn field_list(&self, f: Field) -> Vec<&'a str> {
        let ev = self.ev;
        match f {
            Field::AncestorPath => ev.ancestors.iter().map(Text::as_str).collect(),
            Field::AncestorName => ev.ancestors.iter().map(|a| file_name(a)).collect(),
            Field::FilePath => ev
                .file()
                .into_iter()
                .flat_map(|x| x.changed_paths(ev.kind))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether the event's `f` string (any of them, for a list) matches `g`.
    fn field_matches(&self, f: Field, g: &FieldGlob) -> bool {
        let Some((policy, memo)) = self.memo else {
            // Each of the field's strings against this one glob.
            let matches = |s: &str| g.set.is_match(s);
            return if f.is_list() {
                self.field_list(f).into_iter().any(matches)
            } else {
                self.field_str(f).is_some_and(matches)
            };
        };
        let answer = |s: &str| memo.borrow_mut().answer(policy, f, s);
        if f.is_list() {
            self.many[f.index()]
                .get_or_init(|| self.field_list(f).into_iter().map(answer).collect())
                .iter()
                .any(|b| g.hit(b))
        } else {
            self.one[f.index()]
                .get_or_init(|| self.field_str(f).map(answer))
                .as_deref()
                .is_some_and(|b| g.hit(b))
        }
    }

    /// Whether the file name an exec was started by matches the `exe_name` glob `g`.
    fn started_as_matches(&self, g: &FieldGlob) -> bool {
        let name = || match &self.ev.data {
            EventData::Exec { filename, .. } => Some(file_name(filename)),
            _ => None,
        };
        let Some((policy, memo)) = self.memo else {
            return name().is_some_and(|n| g.set.is_match(n));
        };
        self.started_as
            .get_or_init(|| name().map(|n| memo.borrow_mut().answer(policy, Field::ExeName, n)))
            .as_deref()
            .is_some_and(|b| g.hit(b))
    }

    /// The parent's executable (the first ancestor when the parent is not known).
    fn parent_path(&self) -> Option<&'a str> {
        let ev = self.ev;
        ev.parent
            .as_ref()
            .map(|x| x.exe.as_str())
            .or(ev.ancestors.first().map(Text::as_str))
    }

    /// argv joined with spaces (what `args_regex` reads).
    fn args_line(&self) -> &str {
        self.args_line
            .get_or_init(|| self.ev.process.args.join(" "))
    }
}

impl Conditions {
    // Long on purpose: one early return per condition field; the cheap ones (kinds, flags, ids, ports,
    // results) first, so most rules are out before any string is matched.
    pub fn matches(&self, strings: &EventStrings<'_>, ctx: &Context) -> bool {
        let ev = strings.ev;
        if let Some(k) = &self.kind {
            if !k.contains(&ev.kind) {
                return false;
            }
        }
        let p = &ev.process;
        for (want, have) in [
            (self.stdio_socket, ctx.stdio_socket),
            (self.connected_before, ctx.connected_before),
            (self.lifecycle_signal, ctx.lifecycle_signal),
        ] {
            if want.is_some_and(|w| w != have) {
                return false;
            }
        }
        if let Some(want) = self.parent_network_facing {
            if ctx.parent_network_facing != want {
                return false;
            }
        }
        if let Some(u) = &self.uid {
            if !u.contains(&p.uid) {
                return false;
            }
        }
        if let Some(u) = &self.euid {
            if !u.contains(&p.euid) {
                return false;
            }
        }
        let net = ev.net();
        if let Some(ports) = &self.peer_port {
            if !net.is_some_and(|n| ports.contains(&n.peer.port())) {
                return false;
            }
        }
        if let Some(ports) = &self.local_port {
            if !net.is_some_and(|n| ports.contains(&n.local.port())) {
                return false;
            }
        }
        if let Some(nets) = &self.peer_cidr {
            if !net.is_some_and(|n| nets.iter().any(|c| c.contains(&n.peer.ip()))) {
                return false;
            }
        }
        if let Some(uids) = &self.new_euid {
            let new = ev
                .sys()
                .filter(|x| x.succeeded())
                .and_then(|x| x.new_euid(p.euid));
            if !new.is_some_and(|u| uids.contains(&u)) {
                return false;
            }
        }
        if let Some(want) = self.file_truncated {
            const O_TRUNC: u32 = 0o1000;
            const O_APPEND: u32 = 0o2000;
            // Opened with O_TRUNC (not for appending), or cut by truncate(2)/ftruncate(2).
            let truncated = ev.kind == EventKind::FileWrite
                && ev.file().is_some_and(|f| {
                    f.flags & O_TRUNC != 0 && f.flags & O_APPEND == 0
                        || matches!(f.detail.operation, "truncate" | "ftruncate")
                });
            if truncated != want {
                return false;
            }
        }
        if let Some(kinds) = &self.account_change {
            if !ctx
                .account
                .as_ref()
                .is_some_and(|a| kinds.contains(&a.kind))
            {
                return false;
            }
        }
        if let Some(r) = self.result {
            if (r == ResultCond::Success) != ev.data.succeeded() {
                return false;
            }
        }
        if let Some(want) = self.setid_mode {
            if ev.file().is_none_or(|f| f.detail.setid_mode != want) {
                return false;
            }
        }
        if let Some(classes) = &self.sensitive_class {
            let c = ev.file().and_then(|f| f.detail.sensitive);
            if !c.is_some_and(|c| classes.contains(&c)) {
                return false;
            }
        }
        if let Some(ops) = &self.file_operation {
            if !ev
                .file()
                .is_some_and(|f| ops.iter().any(|o| o == f.detail.operation))
            {
                return false;
            }
        }
        // The string conditions last: they are the costly ones (glob and regex matching).
        let field = |g: &Option<FieldGlob>, f: Field| {
            g.as_ref().is_none_or(|g| strings.field_matches(f, g))
        };
        if !field(&self.exe_path, Field::ExePath) {
            return false;
        }
        // The executable's canonical file name (comm only when the path is unknown): never comm, which
        // any process can set with prctl(PR_SET_NAME). To match an exec, the file name it was executed
        // by counts too (`gcc` runs `x86_64-linux-gnu-gcc-12`, `cc` goes through /etc/alternatives):
        // more ways in, never more ways out (exceptions see the canonical name only).
        if let Some(g) = &self.exe_name {
            if !(strings.field_matches(Field::ExeName, g)
                || self.exe_name_as_started && strings.started_as_matches(g))
            {
                return false;
            }
        }
        if !(field(&self.script_path, Field::ScriptPath)
            && field(&self.exec_filename, Field::ExecFilename)
            && field(&self.parent_path, Field::ParentPath)
            && field(&self.parent_name, Field::ParentName)
            && field(&self.ancestor_path, Field::AncestorPath)
            && field(&self.ancestor_name, Field::AncestorName))
        {
            return false;
        }
        if let Some(needles) = &self.args_contain {
            if !p
                .args
                .iter()
                .any(|a| needles.iter().any(|n| a.contains(n.as_str())))
            {
                return false;
            }
        }
        if let Some(re) = &self.args_regex {
            if !re.is_match(strings.args_line()) {
                return false;
            }
        }
        if !field(&self.file_path, Field::FilePath) {
            return false;
        }
        if let Some(g) = &self.xattr_name {
            let name = ev.file().and_then(|f| f.detail.xattr_name.as_deref());
            if !name.is_some_and(|n| g.is_match(n)) {
                return false;
            }
        }
        true
    }
}

impl Rule {
    /// Every block of conditions: `match`, `any_of`, `except`.
    fn blocks(&self) -> impl Iterator<Item = &Conditions> {
        std::iter::once(&self.conditions)
            .chain(&self.any_of)
            .chain(&self.except)
    }

    /// Whether the rule is about account changes (tried once per change found, never otherwise).
    pub fn uses_account_change(&self) -> bool {
        self.conditions.account_change.is_some()
    }

    pub fn matches(&self, ev: &Event, ctx: &Context) -> bool {
        self.matches_strings(&EventStrings::new(ev), ctx)
    }

    /// [`Rule::matches`] with the event's glob candidates shared across rules ([`EventStrings`]).
    pub fn matches_strings(&self, s: &EventStrings<'_>, ctx: &Context) -> bool {
        self.conditions.matches(s, ctx)
            && (self.any_of.is_empty() || self.any_of.iter().any(|c| c.matches(s, ctx)))
            && !self.except.iter().any(|c| c.matches(s, ctx))
    }
}

impl Conditions {
    /// The glob this block tests `field` with.
    fn glob(&self, field: Field) -> Option<&FieldGlob> {
        match field {
            Field::ExePath => &self.exe_path,
            Field::ExeName => &self.exe_name,
            Field::ParentPath => &self.parent_path,
            Field::ParentName => &self.parent_name,
            Field::AncestorPath => &self.ancestor_path,
            Field::AncestorName => &self.ancestor_name,
            Field::ScriptPath => &self.script_path,
            Field::ExecFilename => &self.exec_filename,
            Field::FilePath => &self.file_path,
        }
        .as_ref()
    }

    /// Whether these conditions can hold for an event of `kind` (its `kind:` list allows it).
    fn allows_kind(&self, kind: EventKind) -> bool {
        self.kind.as_ref().is_none_or(|k| k.contains(&kind))
    }
}

impl Rule {
    /// Whether the rule can match any event of `kind` at all: its own `kind:` allows it and, with
    /// `any_of`, at least one alternative does. A cheap precheck; [`Rule::matches`] stays the truth.
    pub fn can_match_kind(&self, kind: EventKind) -> bool {
        self.conditions.allows_kind(kind)
            && (self.any_of.is_empty() || self.any_of.iter().any(|c| c.allows_kind(kind)))
    }
}

/// The rules that can match each event kind, in policy order: built once per policy so the engine looks
/// only at those (most rules name one or two kinds; an exec is tested against a third of the policy).
#[derive(Debug, Default)]
pub struct KindIndex {
    /// Indexed by the kind's position in `EventKind::ALL`.
    by_kind: Vec<Vec<usize>>,
}

impl KindIndex {
    pub fn new(policy: &Policy) -> KindIndex {
        KindIndex {
            by_kind: EventKind::ALL
                .iter()
                .map(|k| {
                    // `account_change:` rules are tried once per account change found, never here.
                    (0..policy.rules.len())
                        .filter(|i| {
                            let r = &policy.rules[*i];
                            r.can_match_kind(*k) && !r.uses_account_change()
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// Indices into `policy.rules` of the rules that can match `kind`.
    pub fn rules(&self, kind: EventKind) -> &[usize] {
        EventKind::ALL
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| self.by_kind.get(i))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod kind_index_tests {
    use super::*;

    #[test]
    fn index_keeps_exactly_the_rules_whose_kind_allows_the_event() {
        let policy = Policy::load(None).unwrap();
        let index = KindIndex::new(&policy);
        // Account-change rules name no kind, yet no event's index holds them: without a change in the
        // context they cannot match (the engine tries them once per change instead).
        assert!(policy.rules.iter().any(Rule::uses_account_change));
        assert!(index.rules(EventKind::Fork).is_empty());
        for k in EventKind::ALL {
            let want: Vec<usize> = (0..policy.rules.len())
                .filter(|i| {
                    policy.rules[*i].can_match_kind(*k) && !policy.rules[*i].uses_account_change()
                })
                .collect();
            assert_eq!(index.rules(*k), want.as_slice(), "{k:?}");
        }
        // The default policy names kinds on its rules: an exec sees fewer rules than the policy has,
        // and a mount rule is not among them.
        let exec = index.rules(EventKind::Exec);
        assert!(!exec.is_empty() && exec.len() < policy.rules.len());
        assert!(exec
            .iter()
            .all(|i| policy.rules[*i].can_match_kind(EventKind::Exec)));
        assert!(!index
            .rules(EventKind::Mount)
            .iter()
            .any(|i| policy.rules[*i].id == "exec_from_temp_or_memory"));
    }
}
