//! The owned, typed event model every stage after `decode` works on.
//!
//! `decode` builds an [`Event`] from ring-buffer bytes with the caller's identity as the kernel saw it;
//! `enrich` fills in [`Event::process`] (executable, argv, parent, ancestry) from the process tree.
//! Detectors and sinks read events; they never see wire bytes.
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

/// Every kind of event, with its stable label value (used as the `kind` metric label and in logs).
/// Closed set: adding a kind is a code change, so the `kind` label stays bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Exec,
    Fork,
    Exit,
    Connect,
    Accept,
    Listen,
    FileWrite,
    FileUnlink,
    FileRename,
    FileChmod,
    FileChown,
    FileLink,
    PrivChange,
    Ptrace,
    BpfLoad,
    SignalSelf,
    MemfdCreate,
    Mount,
    Umount,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::Exec,
        EventKind::Fork,
        EventKind::Exit,
        EventKind::Connect,
        EventKind::Accept,
        EventKind::Listen,
        EventKind::FileWrite,
        EventKind::FileUnlink,
        EventKind::FileRename,
        EventKind::FileChmod,
        EventKind::FileChown,
        EventKind::FileLink,
        EventKind::PrivChange,
        EventKind::Ptrace,
        EventKind::BpfLoad,
        EventKind::SignalSelf,
        EventKind::MemfdCreate,
        EventKind::Mount,
        EventKind::Umount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Exec => "exec",
            EventKind::Fork => "fork",
            EventKind::Exit => "exit",
            EventKind::Connect => "connect",
            EventKind::Accept => "accept",
            EventKind::Listen => "listen",
            EventKind::FileWrite => "file_write",
            EventKind::FileUnlink => "file_unlink",
            EventKind::FileRename => "file_rename",
            EventKind::FileChmod => "file_chmod",
            EventKind::FileChown => "file_chown",
            EventKind::FileLink => "file_link",
            EventKind::PrivChange => "priv_change",
            EventKind::Ptrace => "ptrace",
            EventKind::BpfLoad => "bpf_load",
            EventKind::SignalSelf => "signal_tripline",
            EventKind::MemfdCreate => "memfd_create",
            EventKind::Mount => "mount",
            EventKind::Umount => "umount",
        }
    }

    /// OpenTelemetry event name, `tripline.<domain>.<action>`.
    pub fn event_name(self) -> &'static str {
        match self {
            EventKind::Exec => "tripline.process.exec",
            EventKind::Fork => "tripline.process.fork",
            EventKind::Exit => "tripline.process.exit",
            EventKind::Connect => "tripline.network.connect",
            EventKind::Accept => "tripline.network.accept",
            EventKind::Listen => "tripline.network.listen",
            EventKind::FileWrite => "tripline.file.write",
            EventKind::FileUnlink => "tripline.file.unlink",
            EventKind::FileRename => "tripline.file.rename",
            EventKind::FileChmod => "tripline.file.chmod",
            EventKind::FileChown => "tripline.file.chown",
            EventKind::FileLink => "tripline.file.link",
            EventKind::PrivChange => "tripline.privilege.change",
            EventKind::Ptrace => "tripline.kernel.ptrace",
            EventKind::BpfLoad => "tripline.kernel.bpf_load",
            EventKind::SignalSelf => "tripline.kernel.signal_tripline",
            EventKind::MemfdCreate => "tripline.process.memfd_create",
            EventKind::Mount => "tripline.kernel.mount",
            EventKind::Umount => "tripline.kernel.umount",
        }
    }

    /// The wire kind number (`tripline_common::kind`).
    pub fn wire(self) -> u16 {
        use tripline_common::kind as k;
        match self {
            EventKind::Exec => k::EXEC,
            EventKind::Fork => k::FORK,
            EventKind::Exit => k::EXIT,
            EventKind::Connect => k::CONNECT,
            EventKind::Accept => k::ACCEPT,
            EventKind::Listen => k::LISTEN,
            EventKind::FileWrite => k::FILE_WRITE,
            EventKind::FileUnlink => k::FILE_UNLINK,
            EventKind::FileRename => k::FILE_RENAME,
            EventKind::FileChmod => k::FILE_CHMOD,
            EventKind::FileChown => k::FILE_CHOWN,
            EventKind::FileLink => k::FILE_LINK,
            EventKind::PrivChange => k::PRIV_CHANGE,
            EventKind::Ptrace => k::PTRACE,
            EventKind::BpfLoad => k::BPF_LOAD,
            EventKind::SignalSelf => k::SIGNAL_SELF,
            EventKind::MemfdCreate => k::MEMFD_CREATE,
            EventKind::Mount => k::MOUNT,
            EventKind::Umount => k::UMOUNT,
        }
    }

    pub fn from_wire(kind: u16) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.wire() == kind)
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// A process as the enrichment stage knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// Thread-group id (what users call the pid).
    pub pid: u32,
    /// Thread id of the thread that acted.
    pub tid: u32,
    pub ppid: u32,
    /// Start time of the thread-group leader, ns since boot. `(pid, start_ns)` identifies a process.
    pub start_ns: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// Audit login uid: the user who logged in, kept across sudo/su. `None` when unset.
    pub auid: Option<u32>,
    /// Kernel `comm` (16 bytes at most).
    pub comm: String,
    /// Executable path; empty when unknown (process started before tripline and /proc had no answer).
    pub exe: String,
    pub args: Vec<String>,
    pub args_truncated: bool,
    pub cgroup_id: u64,
}

impl Process {
    /// The executable's file name, or `comm` when the path is unknown.
    pub fn exe_name(&self) -> &str {
        if self.exe.is_empty() {
            return &self.comm;
        }
        self.exe.rsplit('/').next().unwrap_or(&self.exe)
    }
}

/// The parent as the process tree knows it at the time of the event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parent {
    pub pid: u32,
    pub start_ns: u64,
    pub exe: String,
    pub args: Vec<String>,
    pub uid: u32,
    pub euid: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    pub transport: Transport,
    pub local: SocketAddr,
    /// Unspecified address and port 0 for `listen`.
    pub peer: SocketAddr,
    /// 0 (or the accepted fd) on success, `-errno` on failure.
    pub result: i64,
}

impl Net {
    pub fn succeeded(&self) -> bool {
        self.result >= 0
    }

    pub fn peer_ip(&self) -> IpAddr {
        self.peer.ip()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventData {
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
    Net(Net),
    File(File),
    Sys(Sys),
}

/// A privilege change or kernel-tampering syscall: its name, raw arguments and result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sys {
    /// The syscall: setuid, setresuid, ptrace, bpf, kill, memfd_create, mount, …
    pub syscall: &'static str,
    pub args: [u64; 4],
    /// memfd name, mount target, umount target.
    pub name: Option<String>,
    /// mount source.
    pub name2: Option<String>,
    pub result: i64,
}

impl Sys {
    pub fn succeeded(&self) -> bool {
        self.result >= 0
    }

    /// For the setuid family: the effective uid after a successful call, given the one before.
    pub fn new_euid(&self, before: u32) -> Option<u32> {
        let id = |i: usize| -> Option<u32> {
            let v = self.args[i] as u32;
            (v != u32::MAX).then_some(v)
        };
        match self.syscall {
            "setuid" => id(0),
            "setreuid" | "setresuid" => id(1).or(Some(before)),
            _ => None,
        }
    }
}

/// A file change. Paths are absolute when `resolved`; otherwise as the process passed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    /// rename/link: the new name; symlink: the link created (`path` is then the link's target text).
    pub new_path: Option<String>,
    pub flags: u32,
    pub mode: u32,
    /// chown: the requested owner and group (`None` = unchanged).
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
    pub dirfd: i32,
    /// A relative path could be resolved against the process's cwd or dirfd.
    pub resolved: bool,
    /// 0 (or the fd) on success, `-errno` on failure.
    pub result: i64,
}

impl File {
    pub fn succeeded(&self) -> bool {
        self.result >= 0
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
    /// Executables of the ancestors, parent first, up to the depth the tree keeps.
    pub ancestors: Vec<String>,
    pub data: EventData,
    /// Kernel-side flags (`tripline_common::flags`): read errors, missing offsets.
    pub wire_flags: u16,
}

impl Event {
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
}
