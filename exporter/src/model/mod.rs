//! The ground floor: the shared vocabulary every stage speaks.
//!
//! `model` names the types that cross stages — the [`Event`] with its process and parent, findings and
//! severities ([`finding`]) and the log record schema ([`record`]). What each event family's data means
//! (wire decode, attributes, summary, policy fields) lives beside it in [`crate::families`]; together they
//! are floor 0 and import no stage.
pub mod account;
pub mod finding;
pub mod record;
pub mod text;

use std::time::SystemTime;

pub use crate::families::file::File;
pub use crate::families::net::{Net, Transport};
pub use crate::families::Sys;
pub use finding::{Finding, FindingSource, Model, Part, Severity};
pub use text::{Args, Text};
pub use tripline_common::{EventKind, Family};

/// A process as the enrichment stage knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// Thread-group id (what users call the pid).
    pub pid: u32,
    /// Thread id of the thread that acted.
    pub tid: u32,
    /// The parent at creation (kept when the process is orphaned and reparented).
    pub ppid: u32,
    /// The kernel's current parent (init or a subreaper for orphans).
    pub current_ppid: u32,
    /// Start time of the thread-group leader, ns since boot. `(pid, start_ns)` identifies a process.
    pub start_ns: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// Audit login uid: the user who logged in, kept across sudo/su. `None` when unset.
    pub auid: Option<u32>,
    /// Kernel `comm` (16 bytes at most); shared with the process tree's copy while they agree.
    pub comm: Text,
    /// Canonical executable path (`enrich::identity`); empty when unknown (process started before
    /// tripline and /proc had no answer).
    pub exe: Text,
    /// The script an interpreter runs (canonical), when the executable is an interpreter.
    pub script: Option<Text>,
    /// How `exe` was resolved: `exact`, `parent_cwd` or `spelled`.
    pub exe_resolution: &'static str,
    pub args: Args,
    pub args_truncated: bool,
    pub cgroup_id: u64,
    /// stdin and stdout are both sockets (judged by the probe at exec and at a successful connect only).
    pub stdio_socket: bool,
}

impl Process {
    /// What runs: the script for an interpreter running one, else the executable. Baselines key on it.
    pub fn program(&self) -> &str {
        self.script.as_deref().unwrap_or(self.exe.as_str())
    }

    /// The executable's file name, or `comm` when the path is unknown.
    pub fn exe_name(&self) -> &str {
        if self.exe.is_empty() {
            return &self.comm;
        }
        file_name(&self.exe)
    }
}

/// The last component of a path: what follows the last `/` (all of it when there is none).
pub fn file_name(path: &str) -> &str {
    match path.as_bytes().iter().rposition(|&b| b == b'/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// The parent as the process tree knows it at the time of the event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parent {
    pub pid: u32,
    pub start_ns: u64,
    pub exe: Text,
    pub script: Option<Text>,
    pub args: Args,
    pub uid: u32,
    pub euid: u32,
}

impl Parent {
    /// What the parent runs: its script, else its executable.
    pub fn program(&self) -> &str {
        self.script.as_deref().unwrap_or(self.exe.as_str())
    }
}

/// The kind-specific part of an event; each variant's type lives in its family module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
    /// Process family ([`crate::families::process`]).
    Exec {
        /// The path as given to execve (may be relative).
        filename: String,
        filename_truncated: bool,
    },
    Fork {
        child_pid: u32,
        child_start_ns: u64,
    },
    Exit {
        /// Wait status: exit code in bits 8..16, terminating signal in bits 0..7.
        status: u32,
    },
    /// Network family ([`crate::families::net`]).
    Net(Net),
    /// File family ([`crate::families::file`]).
    File(File),
    /// Privilege and tamper families: one syscall with its arguments ([`crate::families::Sys`]).
    Sys(Sys),
}

impl EventData {
    /// Whether the operation succeeded (the policy's `result:` field). Process events always did, except
    /// an exit with a non-zero status.
    pub fn succeeded(&self) -> bool {
        match self {
            EventData::Sys(x) => x.succeeded(),
            EventData::File(f) => f.succeeded(),
            EventData::Net(n) => n.succeeded(),
            EventData::Exit { status } => *status == 0,
            EventData::Exec { .. } | EventData::Fork { .. } => true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// Kernel boot-time clock at the event, ns.
    pub ktime_ns: u64,
    /// The same instant on the wall clock.
    pub time: SystemTime,
    pub process: Process,
    pub parent: Option<Parent>,
    /// Executables of the ancestors, parent first, up to the depth the tree keeps (the tree's list
    /// for the process, shared by its events).
    pub ancestors: std::sync::Arc<[Text]>,
    pub data: EventData,
    /// Kernel-side flags (`tripline_common::flags`): read errors, missing offsets.
    pub wire_flags: u16,
}

impl Event {
    /// The memory the event holds: itself and every string it carries, counted in full even where it
    /// shares them with the process tree (an upper bound: the tree may drop its copy first). Bounds queues
    /// of events by bytes.
    pub fn held_bytes(&self) -> u64 {
        const STRING: usize = std::mem::size_of::<String>();
        let strs = |a: &[String]| a.iter().map(|s| s.len() + STRING).sum::<usize>();
        let p = &self.process;
        let mut n = std::mem::size_of::<Event>()
            + p.comm.len()
            + p.exe.len()
            + p.script.as_ref().map_or(0, |s| s.len())
            + strs(&p.args)
            + self
                .ancestors
                .iter()
                .map(|a| a.len() + STRING)
                .sum::<usize>();
        if let Some(parent) = &self.parent {
            n += parent.exe.len()
                + parent.script.as_ref().map_or(0, |s| s.len())
                + strs(&parent.args);
        }
        n += match &self.data {
            EventData::Exec { filename, .. } => filename.len(),
            EventData::File(f) => {
                f.path.len()
                    + f.new_path.as_ref().map_or(0, String::len)
                    + f.detail.spelled_path.as_ref().map_or(0, String::len)
            }
            EventData::Sys(x) => {
                x.name.as_ref().map_or(0, String::len) + x.name2.as_ref().map_or(0, String::len)
            }
            EventData::Net(_) | EventData::Fork { .. } | EventData::Exit { .. } => 0,
        };
        n as u64
    }

    pub fn file(&self) -> Option<&File> {
        match &self.data {
            EventData::File(f) => Some(f),
            _ => None,
        }
    }

    pub fn net(&self) -> Option<&Net> {
        match &self.data {
            EventData::Net(n) => Some(n),
            _ => None,
        }
    }

    pub fn sys(&self) -> Option<&Sys> {
        match &self.data {
            EventData::Sys(x) => Some(x),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn file_name_is_what_follows_the_last_slash() {
        for (path, name) in [
            ("/usr/bin/mysql", "mysql"),
            ("mysql", "mysql"),
            ("/usr/bin/", ""),
            ("/", ""),
            ("", ""),
            ("./rel/é", "é"),
        ] {
            assert_eq!(file_name(path), name, "{path:?}");
            assert_eq!(file_name(path), path.rsplit('/').next().unwrap());
        }
    }
}
