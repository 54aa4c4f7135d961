//! The process tree: who is who at the time of each event.
//!
//! Keyed by pid and checked against the start time, so a reused pid never inherits a dead process's
//! identity. Seeded from procfs at start, kept current by exec/fork/exit events, bounded in size.
pub mod filewatch;
pub mod identity;
pub mod ingest;
pub mod procfs;
pub mod redact;

use std::collections::VecDeque;
use std::sync::Arc;

// Keyed by pid: a fast hasher (seeded per process), not SipHash; looked up several times per event.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::path::{Path, PathBuf};

use tripline_common::Header;

use crate::families::Decoded;
use crate::model::{Args, Event, EventData, EventKind, Parent, Process, Text};

/// How deep `Event::ancestors` goes.
pub const MAX_ANCESTRY: usize = 16;
/// How long an exited process stays resolvable (events still in flight may name it), in ns of boot time.
const EXIT_GRACE_NS: u64 = 5_000_000_000;

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Start time in clock ticks: the unit procfs and the kernel share.
    start_ticks: u64,
    start_ns: u64,
    ppid: u32,
    parent_start_ticks: Option<u64>,
    comm: Text,
    /// Canonical executable (see `identity`).
    exe: Text,
    /// The script an interpreter runs, canonical.
    script: Option<Text>,
    resolution: identity::Resolution,
    args: Args,
    args_truncated: bool,
    uid: u32,
    euid: u32,
    auid: Option<u32>,
    exited: bool,
    /// The images above this process (parent first, [`MAX_ANCESTRY`] at most), fixed when it was
    /// forked (from its parent's [`Entry::lineage`]) or at its first event: every event of the process
    /// shares this one list. Like a process's parent image in Tetragon's exec ids, an ancestor that
    /// executes another program later keeps the image it had when this process was created.
    ancestors: Option<Arc<[Text]>>,
    /// This process's image followed by its ancestors: the `ancestors` of the children it forks,
    /// built at its first fork and shared by all of them; cleared when it executes another image.
    lineage: Option<Arc<[Text]>>,
}

impl Entry {
    /// The image an ancestor is named by: the script an interpreter runs, else the executable, else
    /// `comm` when the path is unknown.
    fn image(&self) -> Text {
        match (&self.script, self.exe.is_empty()) {
            (Some(s), _) => s.clone(),
            (None, true) => self.comm.clone(),
            (None, false) => self.exe.clone(),
        }
    }
}

pub struct ProcessTree {
    procs: HashMap<u32, Entry>,
    /// (pid, start_ticks, exit ktime) of exited processes, oldest first.
    exited: VecDeque<(u32, u64, u64)>,
    max: usize,
    ns_per_tick: u64,
    procfs: PathBuf,
    evictions: u64,
    /// (pid, start ticks) procfs had no answer for: not asked again (bounded, cleared when full).
    misses: HashSet<(u32, u64)>,
    /// Applied to argv read from procfs (the seed and late look-ups) before it is stored, so a
    /// parent's or ancestor's argv is redacted like the events' own.
    args_filter: Option<ArgsFilter>,
}

/// Redacts argv in place (the sinks' redactor, given by the pipeline).
pub type ArgsFilter = std::sync::Arc<dyn Fn(&mut [String]) + Send + Sync>;

const MAX_MISSES: usize = 8192;

impl ProcessTree {
    pub fn new(max: usize, procfs: PathBuf) -> ProcessTree {
        ProcessTree {
            procs: HashMap::new(),
            exited: VecDeque::new(),
            max,
            ns_per_tick: 1_000_000_000 / procfs::clock_ticks_per_sec(),
            procfs,
            evictions: 0,
            misses: HashSet::new(),
            args_filter: None,
        }
    }

    /// Sets the filter applied to argv read from procfs (call before [`ProcessTree::seed`]).
    pub fn set_args_filter(&mut self, f: ArgsFilter) {
        self.args_filter = Some(f);
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn procfs(&self) -> &std::path::Path {
        &self.procfs
    }

    /// Evictions since creation (the metric is moved forward by the caller).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    fn ticks(&self, ns: u64) -> u64 {
        ns / self.ns_per_tick
    }

    /// Loads every process procfs shows.
    pub fn seed(&mut self) {
        for p in procfs::snapshot(&self.procfs) {
            self.insert_proc(p);
        }
    }

    fn insert_proc(&mut self, mut p: procfs::ProcInfo) {
        if let Some(f) = &self.args_filter {
            f(&mut p.args);
        }
        let id = identity::from_procfs(
            &identity::Context {
                procfs: &self.procfs,
                pid: p.pid,
                ppid: p.ppid,
                cwd: None,
            },
            &p.exe,
            &p.args,
        );
        let entry = Entry {
            start_ticks: p.start_ticks,
            start_ns: p.start_ticks * self.ns_per_tick,
            ppid: p.ppid,
            parent_start_ticks: None,
            comm: p.comm.into(),
            exe: id.exe,
            script: id.script.map(Text::from),
            resolution: id.resolution,
            args: p.args.into(),
            args_truncated: false,
            uid: p.uid,
            euid: p.euid,
            auid: p.auid,
            exited: false,
            ancestors: None,
            lineage: None,
        };
        self.insert(p.pid, entry);
    }

    fn insert(&mut self, pid: u32, entry: Entry) {
        if self.procs.len() >= self.max && !self.procs.contains_key(&pid) {
            self.evict();
        }
        self.procs.insert(pid, entry);
    }

    /// Frees room: exited processes first, then the oldest-started tenth of the tree.
    fn evict(&mut self) {
        while let Some((pid, start, _)) = self.exited.pop_front() {
            if self
                .procs
                .get(&pid)
                .is_some_and(|e| e.start_ticks == start && e.exited)
            {
                self.procs.remove(&pid);
                self.evictions += 1;
                return;
            }
        }
        let mut by_age: Vec<(u64, u32)> = self
            .procs
            .iter()
            .map(|(pid, e)| (e.start_ticks, *pid))
            .collect();
        by_age.sort_unstable();
        let n = (self.max / 10).max(1);
        for (_, pid) in by_age.into_iter().take(n) {
            self.procs.remove(&pid);
            self.evictions += 1;
        }
    }

    /// Drops exited processes whose grace period has passed.
    fn reap(&mut self, now_ns: u64) {
        while let Some(&(pid, start, at)) = self.exited.front() {
            if now_ns.saturating_sub(at) < EXIT_GRACE_NS {
                break;
            }
            self.exited.pop_front();
            if self
                .procs
                .get(&pid)
                .is_some_and(|e| e.start_ticks == start && e.exited)
            {
                self.procs.remove(&pid);
            }
        }
    }

    /// The live entry for `(pid, start)`; looks in procfs when the tree does not know it.
    fn lookup(&mut self, pid: u32, start_ticks: Option<u64>) -> Option<&Entry> {
        let known = match (self.procs.get(&pid), start_ticks) {
            (Some(e), Some(s)) => e.start_ticks == s,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let miss_key = (pid, start_ticks.unwrap_or(0));
        if !known && pid != 0 && !self.misses.contains(&miss_key) {
            match procfs::read_process(&self.procfs, pid) {
                Some(p) if start_ticks.is_none_or(|s| s == p.start_ticks) => self.insert_proc(p),
                _ => {
                    if self.misses.len() >= MAX_MISSES {
                        self.misses.clear();
                    }
                    self.misses.insert(miss_key);
                }
            }
        }
        self.procs
            .get(&pid)
            .filter(|e| start_ticks.is_none_or(|s| e.start_ticks == s))
    }

    /// Updates the tree with a decoded record and builds the enriched event.
    pub fn enrich(&mut self, mut d: Decoded, time: std::time::SystemTime) -> Event {
        let h = d.header;
        let start_ticks = (h.start_ns != 0).then(|| self.ticks(h.start_ns));
        let parent_start_ticks = (h.parent_start_ns != 0).then(|| self.ticks(h.parent_start_ns));
        self.reap(h.ktime_ns);

        match &d.data {
            EventData::Exec { filename, .. } => self.on_exec(
                &h,
                filename,
                &d.exec_paths,
                std::mem::take(&mut d.args),
                start_ticks,
                parent_start_ticks,
            ),
            EventData::Fork {
                child_pid,
                child_start_ns,
            } => self.on_fork(&h, *child_pid, *child_start_ns, start_ticks),
            _ => {}
        }

        // Borrowed, not cloned: the event copies only the fields it carries.
        let (mut process, entry_parent_start_ticks, kept_ancestors) = {
            let entry = self.lookup(h.pid, start_ticks);
            (
                process_of(&h, entry),
                entry.map(|e| e.parent_start_ticks),
                entry.and_then(|e| e.ancestors.clone()),
            )
        };
        match &d.data {
            EventData::Exec { .. } => process.stdio_socket = self.stdio_is_socket(&h),
            EventData::Net(n) if d.kind == EventKind::Connect && n.succeeded() => {
                process.stdio_socket = self.stdio_is_socket(&h)
            }
            // The probe saw which of fds 0..2 are sockets after the duplication.
            EventData::Sys(x) if d.kind == EventKind::StdioSocket => {
                process.stdio_socket = crate::families::tamper::stdin_and_stdout_on_sockets(x)
            }
            _ => {}
        }
        let parent_key = entry_parent_start_ticks.flatten().or(parent_start_ticks);
        let parent = self.lookup(process.ppid, parent_key).map(|p| Parent {
            pid: process.ppid,
            start_ns: p.start_ns,
            exe: p.exe.clone(),
            script: p.script.clone(),
            args: p.args.clone(),
            uid: p.uid,
            euid: p.euid,
        });
        let ancestors = match kept_ancestors {
            Some(a) => a,
            None => self.ancestors(h.pid, start_ticks, process.ppid, parent_key),
        };

        if let EventData::Exit { .. } = d.data {
            self.on_exit(&h, start_ticks);
        }

        Event {
            kind: d.kind,
            ktime_ns: h.ktime_ns,
            time,
            process,
            parent,
            ancestors,
            data: d.data,
            wire_flags: h.flags,
        }
    }

    /// Whether fds 0 and 1 of the caller are both sockets (a shell or interpreter wired to a
    /// connection): the probe's answer at the event, or procfs now when the probe could not look.
    fn stdio_is_socket(&self, h: &Header) -> bool {
        use tripline_common::flags::{STDIN_SOCKET, STDIO_CHECKED, STDOUT_SOCKET};
        if h.flags & STDIO_CHECKED != 0 {
            return h.flags & (STDIN_SOCKET | STDOUT_SOCKET) == STDIN_SOCKET | STDOUT_SOCKET;
        }
        ["fd/0", "fd/1"].iter().all(|n| {
            std::fs::read_link(proc_path(&self.procfs, h.pid, n))
                .is_ok_and(|l| l.as_os_str().as_encoded_bytes().starts_with(b"socket:"))
        })
    }

    /// A new image: the process's entry now describes the executed file and its argv.
    fn on_exec(
        &mut self,
        h: &Header,
        filename: &str,
        paths: &crate::families::process::ExecPaths,
        args: Vec<String>,
        start_ticks: Option<u64>,
        parent_start_ticks: Option<u64>,
    ) {
        // The parent at creation (from the fork) outlives reparenting: an orphan whose shell exited
        // before it executed still names its real parent, not init.
        let created = self
            .procs
            .get(&h.pid)
            .filter(|e| start_ticks.is_some_and(|s| s == e.start_ticks))
            .map(|e| (e.ppid, e.parent_start_ticks, e.ancestors.clone()));
        // Its ancestors stay (an exec changes the process's own image, not theirs); what its children
        // inherit is rebuilt from the new image.
        let (ppid, parent_start_ticks, ancestors) =
            created.unwrap_or((h.ppid, parent_start_ticks, None));
        let id = identity::at_exec(
            &identity::Context {
                procfs: &self.procfs,
                pid: h.pid,
                ppid,
                cwd: paths.cwd.as_deref(),
            },
            filename,
            paths.exe.as_deref(),
            &args,
        );
        let entry = Entry {
            start_ticks: start_ticks.unwrap_or_default(),
            start_ns: h.start_ns,
            ppid,
            parent_start_ticks,
            comm: comm_of(h, None),
            exe: id.exe,
            script: id.script.map(Text::from),
            resolution: id.resolution,
            args: args.into(),
            args_truncated: h.flags & tripline_common::flags::ARGS_TRUNCATED != 0,
            uid: h.uid,
            euid: h.euid,
            auid: (h.auid != u32::MAX).then_some(h.auid),
            exited: false,
            ancestors,
            lineage: None,
        };
        self.insert(h.pid, entry);
    }

    /// A new process: it runs its parent's image until it executes another.
    fn on_fork(
        &mut self,
        h: &Header,
        child_pid: u32,
        child_start_ns: u64,
        start_ticks: Option<u64>,
    ) {
        let child_ticks = self.ticks(child_start_ns);
        let known_child = self
            .procs
            .get(&child_pid)
            .is_some_and(|e| e.start_ticks == child_ticks);
        if !known_child {
            let parent = self.lookup(h.pid, start_ticks).cloned();
            let ancestors = parent.as_ref().map(|_| self.lineage(h.pid));
            let parent = parent.unwrap_or_default();
            let entry = Entry {
                start_ticks: child_ticks,
                start_ns: child_start_ns,
                ppid: h.pid,
                parent_start_ticks: start_ticks,
                comm: comm_of(h, Some(&parent.comm)),
                exited: false,
                ancestors,
                lineage: None,
                ..parent
            };
            self.insert(child_pid, entry);
        }
    }

    /// The process exited: kept for the grace period (late events still resolve), then reaped.
    fn on_exit(&mut self, h: &Header, start_ticks: Option<u64>) {
        if let Some(e) = self.procs.get_mut(&h.pid) {
            if start_ticks.is_none_or(|s| s == e.start_ticks) {
                e.exited = true;
                self.exited.push_back((h.pid, e.start_ticks, h.ktime_ns));
            }
        }
    }

    /// The ancestors of `(pid, start_ticks)`, whose parent is `(ppid, parent_key)`: the list the tree
    /// keeps for the process (walked once, at its first event, when it was not forked under the
    /// tree's eyes), or walked afresh for a process the tree does not know.
    fn ancestors(
        &mut self,
        pid: u32,
        start_ticks: Option<u64>,
        ppid: u32,
        parent_key: Option<u64>,
    ) -> Arc<[Text]> {
        let known = |e: &Entry| start_ticks.is_none_or(|s| s == e.start_ticks);
        match self.procs.get(&pid).filter(|e| known(e)) {
            Some(Entry {
                ancestors: Some(a), ..
            }) => a.clone(),
            Some(_) => {
                let a: Arc<[Text]> = self.ancestry(ppid, parent_key).into();
                if let Some(e) = self.procs.get_mut(&pid) {
                    e.ancestors = Some(a.clone());
                }
                a
            }
            None => self.ancestry(ppid, parent_key).into(),
        }
    }

    /// What the children of `pid` (a live entry) inherit as their ancestors: its image, then its own
    /// ancestors; built once per image.
    fn lineage(&mut self, pid: u32) -> Arc<[Text]> {
        let Some(e) = self.procs.get(&pid) else {
            return Arc::from([]);
        };
        if let Some(l) = &e.lineage {
            return l.clone();
        }
        let (start, ppid, parent_start) = (e.start_ticks, e.ppid, e.parent_start_ticks);
        let own = self.ancestors(pid, Some(start), ppid, parent_start);
        let Some(e) = self.procs.get_mut(&pid) else {
            return own;
        };
        let l: Arc<[Text]> = std::iter::once(e.image())
            .chain(own.iter().take(MAX_ANCESTRY - 1).cloned())
            .collect();
        e.lineage = Some(l.clone());
        l
    }

    /// Executables from `pid` upwards (parent first), stopping at pid 0/1 loops or unknown entries.
    fn ancestry(&self, mut pid: u32, mut start: Option<u64>) -> Vec<Text> {
        // One allocation at the bound instead of three or four while it grows (depth 3 to 8 is common).
        let mut out = Vec::with_capacity(MAX_ANCESTRY);
        while pid > 0 && out.len() < MAX_ANCESTRY {
            let Some(e) = self.procs.get(&pid) else { break };
            if start.is_some_and(|s| s != e.start_ticks) {
                break;
            }
            out.push(e.image());
            if e.ppid == pid {
                break;
            }
            start = e.parent_start_ticks;
            pid = e.ppid;
        }
        out
    }
}

/// The acting process: identity from the kernel header, image (exe, argv) from the tree when known.
fn process_of(h: &Header, entry: Option<&Entry>) -> Process {
    let comm = comm_of(h, entry.map(|e| &e.comm));
    let auid = (h.auid != u32::MAX).then_some(h.auid);
    let base = Process {
        pid: h.pid,
        tid: h.tid,
        ppid: h.ppid,
        current_ppid: h.ppid,
        start_ns: h.start_ns,
        uid: h.uid,
        euid: h.euid,
        gid: h.gid,
        egid: h.egid,
        auid,
        comm,
        cgroup_id: h.cgroup_id,
        ..Process::default()
    };
    match entry {
        Some(e) => Process {
            // The parent at creation; the kernel's current parent differs for orphans.
            ppid: if e.ppid != 0 { e.ppid } else { h.ppid },
            current_ppid: h.ppid,
            start_ns: if h.start_ns != 0 {
                h.start_ns
            } else {
                e.start_ns
            },
            auid: auid.or(e.auid),
            exe: e.exe.clone(),
            script: e.script.clone(),
            exe_resolution: e.resolution.as_str(),
            args: e.args.clone(),
            args_truncated: e.args_truncated,
            ..base
        },
        None => base,
    }
}

/// The header's `comm`: the `known` one shared when it says the same (nearly every event of a process
/// after its exec), else a new string.
fn comm_of(h: &Header, known: Option<&Text>) -> Text {
    let comm = crate::families::c_bytes(&h.comm);
    match known {
        // The same bytes as a valid string: no need to check them again.
        Some(k) if k.as_bytes() == comm => k.clone(),
        _ => Text::from(&*crate::families::c_str(comm)),
    }
}

/// `<procfs>/<pid>/<rest>`, built in one buffer (several times per event: no intermediate paths).
pub(crate) fn proc_path(procfs: &Path, pid: u32, rest: &str) -> PathBuf {
    let mut s = std::ffi::OsString::with_capacity(procfs.as_os_str().len() + 12 + rest.len());
    s.push(procfs.as_os_str());
    s.push("/");
    s.push(itoa::Buffer::new().format(pid));
    s.push("/");
    s.push(rest);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::{decode, encode};
    use std::mem::size_of;
    use std::time::SystemTime;
    use tripline_common::{kind, ExecEvent, ExitEvent, ForkEvent};

    const TICK: u64 = 10_000_000;

    #[test]
    fn proc_path_is_the_joined_path() {
        for (root, pid, rest) in [("/proc", 42, "fd/0"), ("/tmp/x/proc", 4_000_000, "cwd")] {
            assert_eq!(
                proc_path(Path::new(root), pid, rest),
                Path::new(root).join(pid.to_string()).join(rest)
            );
        }
    }

    fn tree() -> ProcessTree {
        // An empty procfs: nothing is seeded or looked up.
        ProcessTree::new(1000, PathBuf::from("/nonexistent-procfs"))
    }

    fn hdr(
        k: u16,
        len: usize,
        pid: u32,
        ppid: u32,
        start: u64,
        pstart: u64,
    ) -> tripline_common::Header {
        let mut h = encode::header(k, len, pid);
        h.ppid = ppid;
        h.start_ns = start;
        h.parent_start_ns = pstart;
        h
    }

    fn exec(
        t: &mut ProcessTree,
        pid: u32,
        ppid: u32,
        start: u64,
        pstart: u64,
        path: &str,
    ) -> Event {
        let h = hdr(kind::EXEC, size_of::<ExecEvent>(), pid, ppid, start, pstart);
        t.enrich(
            decode(&encode::exec(h, path, &[path, "-x"])).unwrap(),
            SystemTime::now(),
        )
    }

    #[test]
    fn exec_builds_lineage() {
        let mut t = tree();
        exec(&mut t, 100, 1, 100 * TICK, 0, "/usr/sbin/nginx");
        // nginx forks a worker, which execs a shell.
        let h = hdr(kind::FORK, size_of::<ForkEvent>(), 100, 1, 100 * TICK, 0);
        t.enrich(
            decode(&encode::fork(h, 200, 200 * TICK)).unwrap(),
            SystemTime::now(),
        );
        let ev = exec(&mut t, 200, 100, 200 * TICK, 100 * TICK, "/opt/t/bin/sh");
        assert_eq!(ev.process.exe, "/opt/t/bin/sh");
        assert_eq!(ev.process.args, vec!["/opt/t/bin/sh", "-x"]);
        let parent = ev.parent.expect("parent known");
        assert_eq!(parent.exe, "/usr/sbin/nginx");
        assert_eq!(&ev.ancestors[..], ["/usr/sbin/nginx".to_string()]);
    }

    fn fork(t: &mut ProcessTree, pid: u32, ppid: u32, child: u32) -> Event {
        let h = hdr(
            kind::FORK,
            size_of::<ForkEvent>(),
            pid,
            ppid,
            u64::from(pid) * TICK,
            0,
        );
        let ev = encode::fork(h, child, u64::from(child) * TICK);
        t.enrich(decode(&ev).unwrap(), SystemTime::now())
    }

    fn names(ev: &Event) -> Vec<&str> {
        ev.ancestors.iter().map(Text::as_str).collect()
    }

    /// Ancestors are fixed when a process is created and shared: by every event of the process and by
    /// siblings forked from the same image. A process's exec keeps its own ancestors; children it
    /// forks afterwards see its new image, children forked before keep the image they were forked
    /// from (an ancestor's later exec does not rewrite their history).
    #[test]
    fn ancestors_are_fixed_at_creation_and_shared() {
        let mut t = tree();
        exec(&mut t, 10, 1, 10 * TICK, 0, "/opt/t/bin/sshd");
        fork(&mut t, 10, 1, 20);
        let shell = exec(&mut t, 20, 10, 20 * TICK, 10 * TICK, "/opt/t/bin/bash");
        assert_eq!(names(&shell), ["/opt/t/bin/sshd"]);
        fork(&mut t, 20, 10, 30);
        fork(&mut t, 20, 10, 31);
        let a = exec(&mut t, 30, 20, 30 * TICK, 20 * TICK, "/opt/t/bin/make");
        let b = exec(&mut t, 31, 20, 31 * TICK, 20 * TICK, "/opt/t/bin/cc");
        assert_eq!(names(&a), ["/opt/t/bin/bash", "/opt/t/bin/sshd"]);
        assert!(Arc::ptr_eq(&a.ancestors, &b.ancestors), "siblings share");
        let again = fork(&mut t, 30, 20, 40);
        assert!(Arc::ptr_eq(&a.ancestors, &again.ancestors), "events share");
        // The shell executes another program after forking 30: 30 keeps "bash" above it; a child
        // the shell forks now has the new image above it; the shell's own ancestors do not change.
        let replaced = exec(&mut t, 20, 10, 20 * TICK, 10 * TICK, "/opt/t/bin/prog");
        assert_eq!(names(&replaced), ["/opt/t/bin/sshd"]);
        assert_eq!(
            names(&fork(&mut t, 30, 20, 41)),
            ["/opt/t/bin/bash", "/opt/t/bin/sshd"]
        );
        fork(&mut t, 20, 10, 32);
        let c = exec(&mut t, 32, 20, 32 * TICK, 20 * TICK, "/opt/t/bin/id");
        assert_eq!(names(&c), ["/opt/t/bin/prog", "/opt/t/bin/sshd"]);
        // The grandchild 40 (forked by make): make, bash, sshd.
        let g = exec(&mut t, 40, 30, 40 * TICK, 30 * TICK, "/opt/t/bin/ld");
        assert_eq!(
            names(&g),
            ["/opt/t/bin/make", "/opt/t/bin/bash", "/opt/t/bin/sshd"]
        );
    }

    /// Deep chains stop at MAX_ANCESTRY, whether walked or inherited.
    #[test]
    fn ancestors_are_bounded() {
        let mut t = tree();
        exec(&mut t, 100, 1, 100 * TICK, 0, "/opt/t/bin/p100");
        for pid in 101..130u32 {
            fork(&mut t, pid - 1, pid.saturating_sub(2), pid);
            let ev = exec(
                &mut t,
                pid,
                pid - 1,
                u64::from(pid) * TICK,
                u64::from(pid - 1) * TICK,
                &format!("/opt/t/bin/p{pid}"),
            );
            assert_eq!(ev.ancestors.len(), ((pid - 100) as usize).min(MAX_ANCESTRY));
            assert_eq!(ev.ancestors[0].as_str(), format!("/opt/t/bin/p{}", pid - 1));
        }
    }

    /// An event's `comm` is the header's: shared with the tree's copy while they say the same, its
    /// own when the process renamed itself (prctl PR_SET_NAME, a thread name).
    #[test]
    fn comm_is_the_headers_and_shared_while_unchanged() {
        let mut t = tree();
        exec(&mut t, 100, 1, 100 * TICK, 0, "/usr/sbin/nginx");
        let exit = |comm: &[u8]| {
            let mut h = hdr(kind::EXIT, size_of::<ExitEvent>(), 100, 1, 100 * TICK, 0);
            h.comm = [0; 16];
            h.comm[..comm.len()].copy_from_slice(comm);
            decode(&encode::exit(h, 0)).unwrap()
        };
        // The exec's header (`encode::header`) says "true".
        let a = t.enrich(exit(b"true"), SystemTime::now());
        let b = t.enrich(exit(b"true"), SystemTime::now());
        assert_eq!(a.process.comm, "true");
        assert!(std::ptr::eq(
            a.process.comm.as_str(),
            b.process.comm.as_str()
        ));
        let renamed = t.enrich(exit(b"nginx: worker"), SystemTime::now());
        assert_eq!(renamed.process.comm, "nginx: worker");
        let full = t.enrich(exit(b"0123456789abcdef"), SystemTime::now());
        assert_eq!(full.process.comm, "0123456789abcdef");
    }

    /// The exec probe's look at fds 0 and 1 decides; both must be sockets.
    #[test]
    fn stdio_sockets_come_from_the_probe() {
        use tripline_common::flags::{STDIN_SOCKET, STDIO_CHECKED, STDOUT_SOCKET};
        let mut t = tree();
        for (flags, want) in [
            (STDIO_CHECKED | STDIN_SOCKET | STDOUT_SOCKET, true),
            (STDIO_CHECKED | STDIN_SOCKET, false),
            (STDIO_CHECKED, false),
            // Not checked by the probe: procfs (empty here) is asked.
            (STDIN_SOCKET | STDOUT_SOCKET, false),
        ] {
            let mut h = hdr(kind::EXEC, size_of::<ExecEvent>(), 50, 1, 50 * TICK, 0);
            h.flags = flags;
            let ev = t.enrich(
                decode(&encode::exec(h, "/bin/sh", &["sh"])).unwrap(),
                SystemTime::now(),
            );
            assert_eq!(ev.process.stdio_socket, want, "flags {flags:#x}");
        }
    }

    #[test]
    fn forked_child_inherits_parent_image_until_exec() {
        let mut t = tree();
        exec(&mut t, 10, 1, 10 * TICK, 0, "/opt/t/bin/python3");
        let h = hdr(kind::FORK, size_of::<ForkEvent>(), 10, 1, 10 * TICK, 0);
        t.enrich(
            decode(&encode::fork(h, 11, 11 * TICK)).unwrap(),
            SystemTime::now(),
        );
        // An exit from the child before it execs: still python3, parent python3.
        let h = hdr(
            kind::EXIT,
            size_of::<ExitEvent>(),
            11,
            10,
            11 * TICK,
            10 * TICK,
        );
        let ev = t.enrich(decode(&encode::exit(h, 0)).unwrap(), SystemTime::now());
        assert_eq!(ev.process.exe, "/opt/t/bin/python3");
        assert_eq!(ev.parent.unwrap().exe, "/opt/t/bin/python3");
    }

    #[test]
    fn pid_reuse_does_not_inherit_identity() {
        let mut t = tree();
        exec(&mut t, 50, 1, 50 * TICK, 0, "/usr/bin/old");
        let h = hdr(kind::EXIT, size_of::<ExitEvent>(), 50, 1, 50 * TICK, 0);
        t.enrich(decode(&encode::exit(h, 0)).unwrap(), SystemTime::now());
        // Same pid, later start: an exit event for a process the tree never saw exec.
        let h = hdr(kind::EXIT, size_of::<ExitEvent>(), 50, 1, 900 * TICK, 0);
        let ev = t.enrich(decode(&encode::exit(h, 0)).unwrap(), SystemTime::now());
        assert_eq!(
            ev.process.exe, "",
            "must not report the dead process's executable"
        );
    }

    #[test]
    fn exited_processes_are_reaped_after_grace() {
        let mut t = tree();
        exec(&mut t, 60, 1, 60 * TICK, 0, "/bin/x");
        let mut h = hdr(kind::EXIT, size_of::<ExitEvent>(), 60, 1, 60 * TICK, 0);
        h.ktime_ns = 1_000_000_000;
        t.enrich(decode(&encode::exit(h, 0)).unwrap(), SystemTime::now());
        assert_eq!(t.len(), 1);
        let mut h = hdr(kind::EXEC, size_of::<ExecEvent>(), 61, 1, 61 * TICK, 0);
        h.ktime_ns = 1_000_000_000 + EXIT_GRACE_NS + 1;
        t.enrich(
            decode(&encode::exec(h, "/bin/y", &[])).unwrap(),
            SystemTime::now(),
        );
        assert_eq!(t.len(), 1, "pid 60 reaped, pid 61 added");
    }

    #[test]
    fn bounded_with_evictions() {
        let mut t = ProcessTree::new(64, PathBuf::from("/nonexistent-procfs"));
        for pid in 1000..1200 {
            exec(&mut t, pid, 1, u64::from(pid) * TICK, 0, "/bin/true");
        }
        assert!(t.len() <= 64);
        assert!(t.evictions() >= 136);
    }

    /// A parent seeded from procfs (started before tripline) has its argv redacted like events'.
    #[test]
    fn procfs_argv_goes_through_the_filter() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("700");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(
            p.join("stat"),
            "700 (mysql) S 1 700 700 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7000 0 0",
        )
        .unwrap();
        std::fs::write(p.join("cmdline"), b"mysql\0-phunter2\0db\0").unwrap();
        let mut t = ProcessTree::new(64, dir.path().to_path_buf());
        let r = crate::enrich::redact::Redactor::new(
            &crate::enrich::redact::RedactionConfig::default(),
            &crate::telemetry::metrics::Metrics::default(),
        )
        .unwrap();
        t.set_args_filter(std::sync::Arc::new(move |a: &mut [String]| {
            r.redact(a);
        }));
        t.seed();
        let ev = exec(&mut t, 701, 700, 701 * TICK, 7000 * TICK, "/bin/true");
        let parent = ev.parent.expect("parent from the seed");
        assert_eq!(parent.args, vec!["mysql", "-p[REDACTED]", "db"]);
    }

    #[test]
    fn orphans_keep_their_real_parent() {
        let mut t = tree();
        exec(&mut t, 30, 1, 30 * TICK, 0, "/opt/t/bin/bash");
        // `cmd &`: the shell forks the child, then exits before the child executes.
        let h = hdr(kind::FORK, size_of::<ForkEvent>(), 30, 1, 30 * TICK, 0);
        t.enrich(
            decode(&encode::fork(h, 31, 31 * TICK)).unwrap(),
            SystemTime::now(),
        );
        let h = hdr(kind::EXIT, size_of::<ExitEvent>(), 30, 1, 30 * TICK, 0);
        t.enrich(decode(&encode::exit(h, 0)).unwrap(), SystemTime::now());
        // Reparented to init: the kernel now says ppid 1.
        let ev = exec(&mut t, 31, 1, 31 * TICK, 0, "/opt/t/bin/sleep");
        assert_eq!(ev.process.ppid, 30, "the parent at creation");
        assert_eq!(ev.process.current_ppid, 1);
        assert_eq!(ev.parent.as_ref().unwrap().exe, "/opt/t/bin/bash");
        assert_eq!(
            ev.ancestors.first().map(crate::model::Text::as_str),
            Some("/opt/t/bin/bash")
        );
    }
}
