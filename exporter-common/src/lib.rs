//! Wire types shared by the tripline eBPF probes and the userspace exporter.
//!
//! Every record in the ring buffer starts with a [`Header`]; `header.kind` says which body follows and
//! `header.len` says how many bytes the whole record has. All types are `#[repr(C)]` with explicit padding
//! so that both sides agree byte for byte; the size assertions at the bottom fail the build when they drift.
#![cfg_attr(not(test), no_std)]

mod abi;
mod kinds;

pub use abi::{
    sc, syscall_by_op, sysop, tp, KernelOffsets, Syscall, Tracepoint, KERNEL_OFFSET_SOURCES,
    SYSCALLS,
};
pub use kinds::{kind, EventKind, Family};

/// Bumped whenever a wire type changes shape. Userspace rejects records of another version.
pub const WIRE_VERSION: u16 = 1;

/// Indexes into the per-CPU `COUNTERS` array. `SEEN + kind` counts events the probes saw, `LOST + kind`
/// counts those the ring buffer had no room for; the rest are single counters.
pub mod counter {
    use super::kind;
    pub const SEEN: u32 = 0;
    pub const LOST: u32 = kind::MAX;
    /// A kernel read (probe_read) failed while building an event; the event was still sent, with the
    /// field empty and a flag set.
    pub const READ_ERRORS: u32 = 2 * kind::MAX;
    /// Connect/accept state kept between syscall entry and exit could not be stored (map full).
    pub const PENDING_FULL: u32 = 2 * kind::MAX + 1;
    /// File operations outside every watched prefix, dropped in the kernel.
    pub const FILE_FILTERED: u32 = 2 * kind::MAX + 2;
    pub const COUNT: u32 = 2 * kind::MAX + 8;
}

pub const COMM_LEN: usize = 16;
/// Bytes of the executable path kept (the kernel's `filename` as passed to execve).
pub const FILENAME_LEN: usize = 512;
/// Bytes of argv kept (NUL-separated, as in /proc/pid/cmdline). Power of two: the probe masks with it.
pub const ARGS_LEN: usize = 4096;

/// Flags in [`Header::flags`].
pub mod flags {
    /// argv was longer than [`super::ARGS_LEN`] and was cut.
    pub const ARGS_TRUNCATED: u16 = 1 << 0;
    /// The filename was longer than [`super::FILENAME_LEN`] and was cut.
    pub const FILENAME_TRUNCATED: u16 = 1 << 1;
    /// A kernel struct read failed; some credential or parent fields are zero.
    pub const READ_ERROR: u16 = 1 << 2;
    /// The kernel struct offsets were not provided; only helper-derived fields are valid.
    pub const NO_OFFSETS: u16 = 1 << 3;
}

/// Common part of every record: who did it and when.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub kind: u16,
    /// Total record length in bytes, header included.
    pub len: u32,
    /// `bpf_ktime_get_boot_ns()` at the event.
    pub ktime_ns: u64,
    /// Thread id of the caller (`task->pid`).
    pub tid: u32,
    /// Process id of the caller (`task->tgid`).
    pub pid: u32,
    /// Process id of the real parent (`task->real_parent->tgid`).
    pub ppid: u32,
    pub flags: u16,
    pub _pad0: u16,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// Audit login uid (`task->loginuid`); `u32::MAX` when unset.
    pub auid: u32,
    pub _pad1: u32,
    /// `task->start_boottime` of the caller's thread-group leader, in ns since boot.
    pub start_ns: u64,
    /// `task->real_parent->start_boottime`, ns since boot.
    pub parent_start_ns: u64,
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
}

/// `kind::EXEC`: a successful execve/execveat (`sched_process_exec`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub header: Header,
    pub filename_len: u16,
    pub args_len: u16,
    pub _pad: u32,
    pub filename: [u8; FILENAME_LEN],
    pub args: [u8; ARGS_LEN],
}

/// `kind::FORK`: a new process (not a thread). The header describes the parent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkEvent {
    pub header: Header,
    pub child_pid: u32,
    pub _pad: u32,
    pub child_start_ns: u64,
}

/// `kind::EXIT`: a thread-group leader exited.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: Header,
    /// `task->exit_code` (wait status: code << 8 | signal).
    pub exit_code: u32,
    pub _pad: u32,
}

/// `kind::CONNECT`, `kind::ACCEPT`, `kind::LISTEN`: TCP socket activity with kernel-resolved addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetEvent {
    pub header: Header,
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// IPPROTO_TCP (6).
    pub protocol: u16,
    /// Local port, host byte order.
    pub local_port: u16,
    /// Peer port, host byte order (0 for listen).
    pub peer_port: u16,
    /// Local address: IPv4 in the first 4 bytes, or IPv6, network byte order.
    pub local_addr: [u8; 16],
    pub peer_addr: [u8; 16],
    /// Syscall result: 0 or the new fd on success, `-errno` on failure.
    pub result: i64,
}

/// Bytes of a file path kept.
pub const PATH_LEN: usize = 256;
/// Watched path prefixes the file probes compare against (in-kernel filter).
pub const WATCH_MAX: usize = 24;
pub const WATCH_PREFIX_LEN: usize = 64;

/// `kind::FILE_*`: a change to a file under a watched prefix (or a relative path, resolved in userspace).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileEvent {
    pub header: Header,
    /// open flags (FILE_WRITE), rename/link flags, AT_* flags.
    pub flags: u32,
    /// chmod/create mode.
    pub mode: u32,
    /// chown target uid/gid (`u32::MAX` = unchanged).
    pub uid_arg: u32,
    pub gid_arg: u32,
    /// Directory fd the path is relative to (AT_FDCWD = -100).
    pub dirfd: i32,
    pub path_len: u16,
    pub path2_len: u16,
    /// Syscall result: 0/fd on success, `-errno` on failure.
    pub result: i64,
    /// The path operated on (rename/link: the source; symlink: the link target text).
    pub path: [u8; PATH_LEN],
    /// rename/link/symlink: the new name.
    pub path2: [u8; PATH_LEN],
}

/// Bytes kept of a name argument (memfd name, mount source/target).
pub const SYS_NAME_LEN: usize = 128;

/// `kind::PRIV_CHANGE` and the kernel-tampering kinds: one syscall with its raw arguments, the caller's
/// identity before the call (header) and the result.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SysEvent {
    pub header: Header,
    pub op: u32,
    pub name_len: u16,
    pub name2_len: u16,
    pub args: [u64; 4],
    pub result: i64,
    pub name: [u8; SYS_NAME_LEN],
    pub name2: [u8; SYS_NAME_LEN],
}

/// Watched prefixes, written into `.rodata` before load.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WatchList {
    pub count: u32,
    pub lens: [u32; WATCH_MAX],
    pub prefixes: [[u8; WATCH_PREFIX_LEN]; WATCH_MAX],
}

/// Runtime settings written into `.rodata` before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeConfig {
    /// The exporter's own pid: its own activity is not reported (it would feed back on itself).
    pub self_pid: u32,
    /// Wake userspace only once this many bytes wait in the ring buffer (0: wake on every event).
    /// Userspace also drains on a short timer, so a quiet host still sees events promptly.
    pub wakeup_bytes: u32,
}

pub const TCP_ESTABLISHED: i32 = 1;
pub const TCP_SYN_SENT: i32 = 2;
pub const EINPROGRESS: i64 = 115;
pub const TCP_CLOSE: i32 = 7;
pub const TCP_LISTEN: i32 = 10;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const IPPROTO_TCP: u16 = 6;

const _: () = assert!(core::mem::size_of::<Header>() == 96);
const _: () = assert!(core::mem::size_of::<ExecEvent>() == 96 + 8 + FILENAME_LEN + ARGS_LEN);
const _: () = assert!(core::mem::size_of::<ForkEvent>() == 96 + 16);
const _: () = assert!(core::mem::size_of::<ExitEvent>() == 96 + 8);
const _: () = assert!(core::mem::size_of::<NetEvent>() == 96 + 8 + 32 + 8);
const _: () = assert!(ARGS_LEN.is_power_of_two());
const _: () = assert!(core::mem::size_of::<FileEvent>() == 96 + 32 + 2 * PATH_LEN);
const _: () =
    assert!(core::mem::size_of::<WatchList>() == 4 + 4 * WATCH_MAX + WATCH_PREFIX_LEN * WATCH_MAX);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], Copy, made only of integers and byte arrays, and have no
    // implicit padding (the size assertions above pin their layout).
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::ProbeConfig {}
    unsafe impl aya::Pod for super::WatchList {}
}
