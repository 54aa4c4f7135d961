//! Learned behaviour models: what this host (or fleet) normally does, as reviewable keys.
//!
//! Each model turns an event into a normalised key. While learning, new keys are recorded as
//! `learned`; while monitoring, a key that is not learned, accepted or already seen raises one anomaly
//! and is recorded as `seen_in_monitor` (never silently learned), so it shows in diffs and can be
//! accepted. The file is YAML with sorted keys, a versioned schema and provenance.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use crate::model::Model;
use crate::model::{Event, EventData, EventKind, Text};

pub const SCHEMA: &str = "tripline.baseline/v1";

impl Model {
    /// The normalised key this event contributes to the model, if any.
    pub fn key(self, ev: &Event) -> Option<String> {
        let mut out = String::new();
        self.key_into(ev, &program_key(ev), &mut out).then_some(out)
    }

    /// [`Model::key`] written into `out` (cleared first; `false`: no key), with the event's normalised
    /// program already computed ([`program_key`]): the engine normalises it once per event and reuses
    /// one buffer for every model, so a known key costs no allocation.
    pub fn key_into(self, ev: &Event, exe: &str, out: &mut String) -> bool {
        out.clear();
        match (self, &ev.data) {
            (Model::NetworkProcess, EventData::Net(_)) => out.push_str(exe),
            (Model::ProcessLineage, EventData::Exec { .. }) => {
                let parent = ev
                    .parent
                    .as_ref()
                    .map(|p| p.program())
                    .or(ev.ancestors.first().map(Text::as_str));
                let Some(parent) = parent.filter(|p| !p.is_empty()) else {
                    return false;
                };
                normalize_exe_into(parent, out);
                out.push_str(" -> ");
                out.push_str(exe);
            }
            (Model::ProcessUser, EventData::Exec { .. }) => {
                out.push_str(exe);
                out.push_str(" -> ");
                push_user_name(ev.process.euid, out);
            }
            (Model::ListenPort, EventData::Net(n)) if ev.kind == EventKind::Listen => {
                push_listen_key(exe, n.local.port(), n.transport.as_str(), out)
            }
            (Model::OutboundPort, EventData::Net(n))
                if ev.kind == EventKind::Connect && n.succeeded() =>
            {
                out.push_str(exe);
                out.push_str(" -> ");
                push_port_class(n.peer.port(), out);
                out.push('/');
                out.push_str(n.transport.as_str());
                out.push(' ');
                out.push_str(addr_class(n.peer.ip()));
            }
            (Model::IoUringUser, EventData::Sys(_)) if ev.kind == EventKind::IoUringSetup => {
                out.push_str(exe)
            }
            (Model::SensitiveReader, EventData::File(f)) if ev.kind == EventKind::SensitiveRead => {
                out.push_str(f.detail.sensitive.map(|c| c.as_str()).unwrap_or("unknown"));
                out.push_str(" -> ");
                out.push_str(exe);
            }
            (Model::FileWriter, EventData::File(f))
                if f.resolved && f.succeeded() && crate::model::File::changes_file(ev.kind) =>
            {
                // The name the operation created or changed: a rename's or link's new name.
                let path = f.new_path.as_deref().unwrap_or(&f.path);
                let dir = path
                    .rsplit_once('/')
                    .map(|(d, _)| if d.is_empty() { "/" } else { d })
                    .unwrap_or("/");
                normalize_exe_into(dir, out);
                out.push_str(" -> ");
                out.push_str(exe);
                out.push_str(" (");
                push_user_name(ev.process.euid, out);
                out.push(')');
            }
            _ => return false,
        }
        true
    }
}

/// The program part of every model's key: the script for an interpreter running one, else the canonical
/// executable (`comm` when unknown), normalised.
pub fn program_key(ev: &Event) -> String {
    let mut out = String::new();
    program_key_into(ev, &mut out);
    out
}

/// [`program_key`] written into `out` (cleared first).
pub fn program_key_into(ev: &Event, out: &mut String) {
    out.clear();
    normalize_exe_into(
        if ev.process.exe.is_empty() {
            &ev.process.comm
        } else {
            ev.process.program()
        },
        out,
    )
}

/// Ports in the Linux ephemeral range are one key: the kernel picks them, per connection for a peer's
/// port and per start for a server bound to port 0 (a listener's port then differs at every run).
fn push_port_class(port: u16, out: &mut String) {
    if is_ephemeral(port) {
        out.push_str("ephemeral");
    } else {
        out.push_str(itoa::Buffer::new().format(port));
    }
}

/// A `listen_port` key: `exe -> <port class>/<transport>`.
fn push_listen_key(exe: &str, port: u16, transport: &str, out: &mut String) {
    out.push_str(exe);
    out.push_str(" -> ");
    push_port_class(port, out);
    out.push('/');
    out.push_str(transport);
}

/// In the range Linux picks ports from by default (`ip_local_port_range` starts at 32768).
fn is_ephemeral(port: u16) -> bool {
    port >= 32768
}

/// `exe -> <port>/<transport>` with a port in the ephemeral range, in the form [`Model::key_into`]
/// writes today ([`push_listen_key`]).
fn ephemeral_listen_key(key: &str) -> Option<String> {
    let (exe, rest) = key.rsplit_once(" -> ")?;
    let (port, transport) = rest.split_once('/')?;
    let port: u16 = port.parse().ok().filter(|&p| is_ephemeral(p))?;
    let mut out = String::with_capacity(key.len());
    push_listen_key(exe, port, transport, &mut out);
    Some(out)
}

pub fn addr_class(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => "loopback",
        IpAddr::V4(v4)
            if v4.is_private()
                || v4.is_link_local()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 =>
        {
            "private"
        }
        IpAddr::V6(v6) if v6.is_loopback() => "loopback",
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => addr_class(IpAddr::V4(
            v6.to_ipv4_mapped()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        )),
        IpAddr::V6(v6)
            if (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80 =>
        {
            "private"
        }
        _ => "public",
    }
}

/// The user name for a uid (`uid:N` when unknown), cached: a passwd lookup reads /etc/passwd.
fn push_user_name(uid: u32, out: &mut String) {
    thread_local! {
        static CACHE: std::cell::RefCell<foldhash::HashMap<u32, String>> = Default::default();
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(n) = c.get(&uid) {
            out.push_str(n);
            return;
        }
        let name = match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
            Ok(Some(u)) => u.name,
            _ => format!("uid:{uid}"),
        };
        if c.len() >= 4096 {
            c.clear();
        }
        out.push_str(&name);
        c.insert(uid, name);
    })
}

/// Keeps models stable across upgrades and hosts: dotted version numbers in a path
/// (`/usr/lib/jvm/java-17.0.2/…`, `/root/.pyenv/versions/3.11.7/…`) and all-digit segments
/// (`/proc/1234/…`) become `*`.
pub fn normalize_exe(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    normalize_exe_into(path, &mut out);
    out
}

/// [`normalize_exe`] appended to `out`.
fn normalize_exe_into(path: &str, out: &mut String) {
    // Most paths have no digit at all: nothing to replace.
    if !path.bytes().any(|b| b.is_ascii_digit()) {
        out.push_str(path);
        return;
    }
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()) {
            out.push('*');
            continue;
        }
        replace_versions(seg, out);
    }
}

/// `java-17.0.2-openjdk` → `java-*-openjdk`: runs of digits joined by dots (at least one dot), appended
/// to `out`.
fn replace_versions(seg: &str, out: &mut String) {
    let b = seg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            let mut dots = 0;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || (b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()))
            {
                if b[i] == b'.' {
                    dots += 1;
                }
                i += 1;
            }
            if dots > 0 {
                out.push('*');
            } else {
                out.push_str(&seg[start..i]);
            }
        } else {
            let ch = seg[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelKeys {
    pub learned: KeySet,
    pub seen_in_monitor: KeySet,
    pub accepted: KeySet,
}

/// The keys of one model in one state. Looked up for every event, so hashed (one hash of the key, not
/// a string comparison per tree level); listed, written and iterated in sorted order, so the file
/// stays reviewable and its diffs stable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet(foldhash::HashSet<Box<str>>);

impl KeySet {
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(key)
    }

    /// Adds `key`; false when it was there.
    pub fn insert(&mut self, key: impl Into<Box<str>>) -> bool {
        self.0.insert(key.into())
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.0.remove(key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys, sorted.
    pub fn iter(&self) -> std::vec::IntoIter<&str> {
        let mut keys: Vec<&str> = self.0.iter().map(|k| &**k).collect();
        keys.sort_unstable();
        keys.into_iter()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|k| keep(k));
    }
}

impl<'a> IntoIterator for &'a KeySet {
    type Item = &'a str;
    type IntoIter = std::vec::IntoIter<&'a str>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: Into<Box<str>>> Extend<K> for KeySet {
    fn extend<I: IntoIterator<Item = K>>(&mut self, keys: I) {
        self.0.extend(keys.into_iter().map(Into::into));
    }
}

impl<K: Into<Box<str>>> FromIterator<K> for KeySet {
    fn from_iter<I: IntoIterator<Item = K>>(keys: I) -> KeySet {
        let mut set = KeySet::default();
        set.extend(keys);
        set
    }
}

impl Serialize for KeySet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for KeySet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeySet, D::Error> {
        Ok(Vec::<String>::deserialize(d)?.into_iter().collect())
    }
}

impl ModelKeys {
    pub fn knows(&self, key: &str) -> bool {
        self.learned.contains(key)
            || self.accepted.contains(key)
            || self.seen_in_monitor.contains(key)
    }

    pub fn all(&self) -> BTreeSet<&str> {
        self.learned
            .iter()
            .chain(&self.accepted)
            .chain(&self.seen_in_monitor)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.learned.len() + self.seen_in_monitor.len() + self.accepted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Provenance {
    /// The fleet version of this model (a git tag or commit of the reviewed baseline), set by
    /// `tripline baseline merge --set-version`; reported as `tripline_baseline_info{version}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub host: String,
    pub tripline_version: String,
    /// RFC 3339 start and end of the learning window(s).
    pub learned_from: Option<String>,
    pub learned_until: Option<String>,
    /// Files or URLs merged into this model.
    pub sources: Vec<String>,
}

/// The baseline file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub schema: String,
    #[serde(default)]
    pub provenance: Provenance,
    #[serde(default, deserialize_with = "unique_models")]
    pub models: BTreeMap<Model, ModelKeys>,
}

/// `models:` with a model named twice is an error (a plain map would silently keep the last one and
/// drop the other's keys).
fn unique_models<'de, D>(d: D) -> Result<BTreeMap<Model, ModelKeys>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = BTreeMap<Model, ModelKeys>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of model name to keys")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(m) = a.next_key::<Model>()? {
                let keys: ModelKeys = a.next_value()?;
                if out.insert(m, keys).is_some() {
                    return Err(serde::de::Error::custom(format_args!(
                        "model `{}` appears twice under `models`; merge its keys into one entry",
                        m.as_str()
                    )));
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline::new()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a valid tripline baseline ({message}); the file was moved aside to {aside} so it is not overwritten: restore a good copy, or start again to learn a new model")]
    Corrupt {
        path: String,
        message: String,
        aside: String,
    },
    #[error("{path}: not a valid tripline baseline: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Fetch(String),
}

impl Baseline {
    pub fn new() -> Baseline {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        Baseline {
            schema: SCHEMA.into(),
            provenance: Provenance {
                host,
                tripline_version: env!("CARGO_PKG_VERSION").into(),
                ..Provenance::default()
            },
            models: Model::ALL
                .iter()
                .map(|m| (*m, ModelKeys::default()))
                .collect(),
        }
    }

    pub fn model(&mut self, m: Model) -> &mut ModelKeys {
        self.models.entry(m).or_default()
    }

    pub fn parse(text: &str, path: &str) -> Result<Baseline, BaselineError> {
        crate::limits::check_nesting(text, path, crate::limits::MAX_NESTING).map_err(|e| {
            BaselineError::Invalid {
                path: path.into(),
                message: e.to_string(),
            }
        })?;
        let mut b: Baseline =
            serde_yaml_ng::from_str(text).map_err(|e| BaselineError::Invalid {
                path: path.into(),
                message: match e.location() {
                    Some(l) => format!("line {} column {}: {e}", l.line(), l.column()),
                    None => e.to_string(),
                },
            })?;
        if b.schema != SCHEMA {
            return Err(BaselineError::Invalid {
                path: path.into(),
                message: format!(
                    "schema {:?} is not supported; expected {SCHEMA:?}",
                    b.schema
                ),
            });
        }
        b.ephemeral_listen_ports();
        Ok(b)
    }

    /// `listen_port` keys written before listening ports in the ephemeral range became one key
    /// (`exe -> 45123/tcp`) are read as that key (`exe -> ephemeral/tcp`), so a file from an older
    /// version raises no anomaly for them and is rewritten in today's form at its next save.
    fn ephemeral_listen_ports(&mut self) {
        let Some(keys) = self.models.get_mut(&Model::ListenPort) else {
            return;
        };
        for set in [
            &mut keys.learned,
            &mut keys.seen_in_monitor,
            &mut keys.accepted,
        ] {
            let old: Vec<(String, String)> = set
                .iter()
                .filter_map(|k| ephemeral_listen_key(k).map(|new| (k.to_string(), new)))
                .collect();
            for (k, new) in old {
                set.remove(&k);
                set.insert(new);
            }
        }
    }

    /// Reads a baseline file for the CLI: errors, never moves the file.
    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let text = read_text(path)?;
        Baseline::parse(&text, &path.display().to_string())
    }

    /// Loads the daemon's state file: `Ok(None)` when it does not exist yet; a corrupt file is moved
    /// aside (`<file>.corrupt-<unix seconds>`) and reported, never overwritten.
    pub fn load_state(path: &Path) -> Result<Option<Baseline>, BaselineError> {
        let text = match read_text(path) {
            Ok(t) => t,
            Err(BaselineError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        match Baseline::parse(&text, &path.display().to_string()) {
            Ok(b) => Ok(Some(b)),
            Err(BaselineError::Invalid { message, .. }) => {
                let ts = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".corrupt-{ts}"));
                let aside = PathBuf::from(aside);
                std::fs::rename(path, &aside).map_err(|source| BaselineError::Write {
                    path: aside.display().to_string(),
                    source,
                })?;
                Err(BaselineError::Corrupt {
                    path: path.display().to_string(),
                    message,
                    aside: aside.display().to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    pub fn to_yaml(&self) -> String {
        let body = serde_yaml_ng::to_string(self).unwrap_or_default();
        format!(
            "# tripline behaviour baseline: review changes like code (docs/detection.md)\n{body}"
        )
    }

    /// Writes atomically: a temp file in the same directory, fsync, rename, fsync the directory.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let err = |source| BaselineError::Write {
            path: path.display().to_string(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        {
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(self.to_yaml().as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Union of several baselines (a fleet model). A key learned anywhere is learned; accepted keys
    /// stay accepted; keys only seen in monitor stay in that state.
    pub fn merge(parts: &[(String, Baseline)]) -> Baseline {
        let mut out = Baseline::new();
        for (source, b) in parts {
            out.provenance.sources.push(source.clone());
            for (m, keys) in &b.models {
                let o = out.model(*m);
                o.learned.extend(keys.learned.iter());
                o.accepted.extend(keys.accepted.iter());
                o.seen_in_monitor.extend(keys.seen_in_monitor.iter());
            }
            let from = b.provenance.learned_from.clone();
            if from.is_some()
                && (out.provenance.learned_from.is_none() || from < out.provenance.learned_from)
            {
                out.provenance.learned_from = from;
            }
            let until = b.provenance.learned_until.clone();
            if until > out.provenance.learned_until {
                out.provenance.learned_until = until;
            }
        }
        for keys in out.models.values_mut() {
            let (learned, accepted) = (&keys.learned, &keys.accepted);
            keys.seen_in_monitor
                .retain(|k| !learned.contains(k) && !accepted.contains(k));
        }
        out
    }

    /// Keys NEW knows (in any state) that OLD does not, and keys OLD knows that NEW does not.
    pub fn diff(old: &Baseline, new: &Baseline) -> Vec<(Model, char, String)> {
        let empty = ModelKeys::default();
        let mut out = Vec::new();
        for m in Model::ALL {
            let o = old.models.get(m).unwrap_or(&empty).all();
            let n = new.models.get(m).unwrap_or(&empty).all();
            for k in n.difference(&o) {
                out.push((*m, '+', k.to_string()));
            }
            for k in o.difference(&n) {
                out.push((*m, '-', k.to_string()));
            }
        }
        out
    }

    /// Takes in what another writer put in the same file since we last wrote it (a `tripline baseline
    /// accept` or `merge` on the live file): its accepted and learned keys join ours, and keys it
    /// accepted are no longer `seen_in_monitor`. Returns how many keys changed.
    pub fn absorb(&mut self, disk: &Baseline) -> usize {
        let mut n = 0;
        for (m, theirs) in &disk.models {
            let ours = self.model(*m);
            for k in &theirs.accepted {
                ours.seen_in_monitor.remove(k);
                n += usize::from(ours.accepted.insert(k));
            }
            for k in &theirs.learned {
                if !ours.knows(k) {
                    ours.seen_in_monitor.remove(k);
                    n += usize::from(ours.learned.insert(k));
                }
            }
        }
        n
    }

    /// The state a key is in: `learned`, `accepted`, `seen_in_monitor`, or `None`.
    pub fn state_of(&self, model: Model, key: &str) -> Option<&'static str> {
        let k = self.models.get(&model)?;
        if k.accepted.contains(key) {
            Some("accepted")
        } else if k.learned.contains(key) {
            Some("learned")
        } else if k.seen_in_monitor.contains(key) {
            Some("seen_in_monitor")
        } else {
            None
        }
    }

    /// Moves `seen_in_monitor` keys to `accepted` (all, or those of one model / matching one key).
    pub fn accept(&mut self, model: Option<Model>, key: Option<&str>) -> usize {
        let mut n = 0;
        for (m, keys) in self.models.iter_mut() {
            if model.is_some_and(|x| x != *m) {
                continue;
            }
            let take: Vec<String> = keys
                .seen_in_monitor
                .iter()
                .filter(|k| key.is_none_or(|want| want == *k))
                .map(str::to_string)
                .collect();
            for k in take {
                keys.seen_in_monitor.remove(&k);
                keys.accepted.insert(k);
                n += 1;
            }
        }
        n
    }
}

/// `learn`, `monitor` or `auto` (learn, then monitor).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    Default,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Learn,
    Monitor,
    #[default]
    Auto,
}

/// What observing a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Known,
    Learned,
    Anomaly,
}

/// The live models with their lifecycle.
#[derive(Debug)]
pub struct Baselines {
    pub baseline: Baseline,
    pub mode: Mode,
    started: SystemTime,
    learn_for: Duration,
    quiet_period: Duration,
    last_new_key: SystemTime,
    learning: bool,
    pub enabled: BTreeSet<Model>,
    pub dirty: bool,
}

impl Baselines {
    pub fn new(
        baseline: Baseline,
        mode: Mode,
        learn_for: Duration,
        quiet_period: Duration,
        enabled: BTreeSet<Model>,
        now: SystemTime,
    ) -> Baselines {
        let learning = mode != Mode::Monitor;
        Baselines {
            baseline,
            mode,
            started: now,
            learn_for,
            quiet_period,
            last_new_key: now,
            learning,
            enabled,
            dirty: false,
        }
    }

    pub fn learning(&self) -> bool {
        self.learning
    }

    /// Moves `auto` from learning to monitoring once `learn_for` has passed, or once no new key has
    /// appeared for `quiet_period` (when set). Returns true when the mode changed.
    pub fn tick(&mut self, now: SystemTime) -> bool {
        if self.mode != Mode::Auto || !self.learning {
            return false;
        }
        let since_start = now.duration_since(self.started).unwrap_or_default();
        let quiet = now.duration_since(self.last_new_key).unwrap_or_default();
        if since_start >= self.learn_for
            || (!self.quiet_period.is_zero() && quiet >= self.quiet_period)
        {
            self.learning = false;
            self.baseline.provenance.learned_until = Some(crate::model::record::rfc3339(now));
            self.dirty = true;
            return true;
        }
        false
    }

    pub fn observe(&mut self, model: Model, key: &str, now: SystemTime) -> Outcome {
        let learning = self.learning;
        let keys = self.baseline.model(model);
        if keys.knows(key) {
            return Outcome::Known;
        }
        self.dirty = true;
        if learning {
            keys.learned.insert(key);
            self.last_new_key = now;
            if self.baseline.provenance.learned_from.is_none() {
                self.baseline.provenance.learned_from = Some(crate::model::record::rfc3339(now));
            }
            Outcome::Learned
        } else {
            keys.seen_in_monitor.insert(key);
            Outcome::Anomaly
        }
    }
}

/// Reads a baseline file of bounded size.
fn read_text(path: &Path) -> Result<String, BaselineError> {
    use crate::limits::{read_bounded, LimitError, MAX_BASELINE_BYTES};
    read_bounded(path, MAX_BASELINE_BYTES, "baseline").map_err(|e| match e {
        LimitError::Read { path, source } => BaselineError::Read { path, source },
        other => BaselineError::Invalid {
            path: path.display().to_string(),
            message: other.to_string(),
        },
    })
}

/// Checks at start that the baseline file can be written (its directory exists and is writable), so
/// a wrong path is a clear error then, not a warning at every save.
pub fn check_writable(path: &Path) -> Result<(), BaselineError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut probe = path.as_os_str().to_owned();
    probe.push(format!(".probe-{}", std::process::id()));
    let probe = PathBuf::from(probe);
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(BaselineError::Write {
            path: format!(
                "{} (directory {} must exist and be writable by tripline)",
                path.display(),
                dir.display()
            ),
            source,
        }),
    }
}

/// Fetches a baseline from a peer's `GET /api/v1/baseline` (bounded in time and size).
pub fn fetch(url: &str) -> Result<Baseline, BaselineError> {
    use std::io::Read;
    let err = |e: &dyn std::fmt::Display| BaselineError::Fetch(format!("{url}: {e}"));
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| err(&e))?;
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/yaml")
        .send()
        .map_err(|e| err(&e))?;
    if !resp.status().is_success() {
        return Err(err(&format!("HTTP {}", resp.status().as_u16())));
    }
    let mut body = String::new();
    resp.take(64 << 20)
        .read_to_string(&mut body)
        .map_err(|e| err(&e))?;
    Baseline::parse(&body, url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys are hashed in memory but written, listed and iterated sorted, whatever order they came in;
    /// a key listed twice in a file is one key.
    #[test]
    fn key_sets_are_written_and_listed_sorted() {
        let mut keys = ModelKeys::default();
        for k in [
            "/usr/bin/zsh",
            "/usr/bin/curl",
            "/opt/app/bin/api",
            "/usr/bin/git",
        ] {
            assert!(keys.learned.insert(k));
        }
        assert!(!keys.learned.insert("/usr/bin/git"), "already there");
        assert!(keys.learned.contains("/usr/bin/curl") && !keys.learned.contains("/usr/bin/cur"));
        let sorted = [
            "/opt/app/bin/api",
            "/usr/bin/curl",
            "/usr/bin/git",
            "/usr/bin/zsh",
        ];
        assert_eq!(keys.learned.iter().collect::<Vec<_>>(), sorted);
        let yaml = serde_yaml_ng::to_string(&keys).unwrap();
        assert!(
            yaml.starts_with(
                "learned:\n- /opt/app/bin/api\n- /usr/bin/curl\n- /usr/bin/git\n- /usr/bin/zsh\n"
            ),
            "{yaml}"
        );
        let back: ModelKeys =
            serde_yaml_ng::from_str("learned: [/usr/bin/zsh, /usr/bin/curl, /usr/bin/zsh]")
                .unwrap();
        assert_eq!(
            back.learned.iter().collect::<Vec<_>>(),
            ["/usr/bin/curl", "/usr/bin/zsh"]
        );
        assert!(keys.learned.remove("/usr/bin/zsh") && !keys.learned.remove("/usr/bin/zsh"));
        assert_eq!(keys.len(), 3);
    }

    /// A file written when listening ports were keyed one by one reads in today's form: ports in the
    /// ephemeral range become one key per executable and transport, in every state; the rest is kept.
    #[test]
    fn older_ephemeral_listen_port_keys_are_read_as_one() {
        let text = format!(
            "schema: {SCHEMA}\nmodels:\n  listen_port:\n    learned: ['/a -> 41234/tcp', '/a -> 52001/tcp', '/a -> 22/tcp', '/b -> x -> 40000/udp']\n    accepted: ['/c -> 32767/tcp', '/c -> 65535/tcp']\n    seen_in_monitor: ['/d -> 33000/tcp', '/d -> not-a-port/tcp']\n  outbound_port:\n    learned: ['/a -> 41234/tcp loopback']\n"
        );
        let b = Baseline::parse(&text, "old.yml").unwrap();
        let keys = |m: Model, f: fn(&ModelKeys) -> &KeySet| -> Vec<String> {
            f(&b.models[&m]).iter().map(String::from).collect()
        };
        assert_eq!(
            keys(Model::ListenPort, |k| &k.learned),
            [
                "/a -> 22/tcp",
                "/a -> ephemeral/tcp",
                "/b -> x -> ephemeral/udp"
            ]
        );
        assert_eq!(
            keys(Model::ListenPort, |k| &k.accepted),
            ["/c -> 32767/tcp", "/c -> ephemeral/tcp"]
        );
        assert_eq!(
            keys(Model::ListenPort, |k| &k.seen_in_monitor),
            ["/d -> ephemeral/tcp", "/d -> not-a-port/tcp"]
        );
        // Other models' keys are theirs to define.
        assert_eq!(
            keys(Model::OutboundPort, |k| &k.learned),
            ["/a -> 41234/tcp loopback"]
        );
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            normalize_exe("/root/.pyenv/versions/3.11.7/bin/python3"),
            "/root/.pyenv/versions/*/bin/python3"
        );
        assert_eq!(
            normalize_exe("/usr/lib/jvm/java-17.0.2-openjdk/bin/java"),
            "/usr/lib/jvm/java-*-openjdk/bin/java"
        );
        assert_eq!(normalize_exe("/proc/1234/exe"), "/proc/*/exe");
        assert_eq!(normalize_exe("/usr/bin/python3"), "/usr/bin/python3");
        assert_eq!(normalize_exe("/usr/sbin/php-fpm8.2"), "/usr/sbin/php-fpm*");
        for (port, class) in [(443, "443"), (32767, "32767"), (32768, "ephemeral")] {
            let mut out = String::new();
            push_port_class(port, &mut out);
            assert_eq!(out, class);
        }
        assert_eq!(addr_class("127.0.0.1".parse().unwrap()), "loopback");
        assert_eq!(addr_class("10.1.2.3".parse().unwrap()), "private");
        assert_eq!(addr_class("fd00::1".parse().unwrap()), "private");
        assert_eq!(addr_class("8.8.8.8".parse().unwrap()), "public");
        assert_eq!(addr_class("::ffff:192.168.1.1".parse().unwrap()), "private");
    }

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn all() -> BTreeSet<Model> {
        Model::ALL.iter().copied().collect()
    }

    #[test]
    fn auto_learns_then_monitors_and_records_seen_keys() {
        let mut b = Baselines::new(
            Baseline::new(),
            Mode::Auto,
            Duration::from_secs(60),
            Duration::ZERO,
            all(),
            t(0),
        );
        assert_eq!(
            b.observe(Model::NetworkProcess, "/usr/bin/curl", t(1)),
            Outcome::Learned
        );
        assert!(!b.tick(t(30)));
        assert!(b.tick(t(61)));
        assert!(!b.learning());
        assert_eq!(
            b.observe(Model::NetworkProcess, "/usr/bin/curl", t(62)),
            Outcome::Known
        );
        assert_eq!(
            b.observe(Model::NetworkProcess, "/tmp/x", t(63)),
            Outcome::Anomaly
        );
        assert_eq!(
            b.observe(Model::NetworkProcess, "/tmp/x", t(64)),
            Outcome::Known,
            "one anomaly per key"
        );
        let keys = &b.baseline.models[&Model::NetworkProcess];
        assert!(keys.seen_in_monitor.contains("/tmp/x"));
        assert!(!keys.learned.contains("/tmp/x"), "never silently learned");
    }

    #[test]
    fn auto_switches_after_quiet_period() {
        let mut b = Baselines::new(
            Baseline::new(),
            Mode::Auto,
            Duration::from_secs(3600),
            Duration::from_secs(20),
            all(),
            t(0),
        );
        b.observe(Model::ProcessUser, "a -> root", t(5));
        assert!(!b.tick(t(20)));
        assert!(b.tick(t(26)));
    }

    #[test]
    fn learn_mode_never_monitors_and_monitor_never_learns() {
        let mut l = Baselines::new(
            Baseline::new(),
            Mode::Learn,
            Duration::ZERO,
            Duration::ZERO,
            all(),
            t(0),
        );
        assert!(!l.tick(t(1_000_000)));
        assert_eq!(
            l.observe(Model::ListenPort, "x -> 22/tcp", t(1)),
            Outcome::Learned
        );
        let mut m = Baselines::new(
            Baseline::new(),
            Mode::Monitor,
            Duration::ZERO,
            Duration::ZERO,
            all(),
            t(0),
        );
        assert_eq!(
            m.observe(Model::ListenPort, "x -> 22/tcp", t(1)),
            Outcome::Anomaly
        );
    }

    #[test]
    fn persistence_round_trip_is_stable_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.yml");
        let mut b = Baseline::new();
        b.model(Model::ProcessLineage)
            .learned
            .insert("/usr/sbin/nginx -> /usr/sbin/nginx");
        b.model(Model::ProcessLineage)
            .learned
            .insert("/usr/lib/systemd/systemd -> /usr/sbin/nginx");
        b.model(Model::OutboundPort)
            .seen_in_monitor
            .insert("/usr/bin/curl -> 443/tcp public");
        b.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let a = text.find("/usr/lib/systemd").unwrap();
        let z = text.find("/usr/sbin/nginx -> /usr/sbin/nginx").unwrap();
        assert!(a < z, "keys are sorted");
        let back = Baseline::load_state(&path).unwrap().unwrap();
        assert_eq!(back, b);
        b.save(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "same content, same bytes"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn corrupt_state_is_moved_aside_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.yml");
        std::fs::write(&path, "schema: [oops\n").unwrap();
        let err = Baseline::load_state(&path).unwrap_err().to_string();
        assert!(err.contains("moved aside"), "{err}");
        assert!(!path.exists());
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0]
            .to_string_lossy()
            .starts_with("baseline.yml.corrupt-"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&aside[0])).unwrap(),
            "schema: [oops\n"
        );
        assert!(Baseline::load_state(&path).unwrap().is_none());
    }

    #[test]
    fn wrong_schema_is_rejected() {
        let err = Baseline::parse("schema: other/v9\n", "f.yml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not supported"), "{err}");
    }

    #[test]
    fn merge_diff_accept() {
        let mut a = Baseline::new();
        a.model(Model::NetworkProcess)
            .learned
            .insert("/usr/bin/curl");
        let mut b = Baseline::new();
        b.model(Model::NetworkProcess)
            .learned
            .insert("/usr/bin/wget");
        b.model(Model::NetworkProcess)
            .seen_in_monitor
            .insert("/usr/bin/curl");
        b.model(Model::NetworkProcess)
            .seen_in_monitor
            .insert("/tmp/evil");
        let m = Baseline::merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]);
        let keys = &m.models[&Model::NetworkProcess];
        assert_eq!(keys.learned.len(), 2);
        assert_eq!(
            keys.seen_in_monitor.iter().collect::<Vec<_>>(),
            vec!["/tmp/evil"],
            "learned elsewhere wins"
        );
        assert_eq!(m.provenance.sources, vec!["a", "b"]);

        let d = Baseline::diff(&a, &m);
        assert!(d.contains(&(Model::NetworkProcess, '+', "/usr/bin/wget".into())));
        assert!(d.contains(&(Model::NetworkProcess, '+', "/tmp/evil".into())));
        assert!(Baseline::diff(&m, &m).is_empty());

        let mut m2 = m.clone();
        assert_eq!(m2.accept(Some(Model::ProcessUser), None), 0);
        assert_eq!(m2.accept(None, Some("/tmp/evil")), 1);
        assert!(m2.models[&Model::NetworkProcess]
            .accepted
            .contains("/tmp/evil"));
        assert!(m2.models[&Model::NetworkProcess].seen_in_monitor.is_empty());
    }
}
