//! Wire types shared by the tripline eBPF probes and the userspace exporter.
//!
//! Every record in the ring buffer starts with a [`Header`]; `header.kind` says which body follows and
//! `header.len` says how many bytes the whole record has. All types are `#[repr(C)]` with explicit padding
//! so that both sides agree byte for byte; the size assertions at the bottom fail the build when they drift.
#![cfg_attr(not(test), no_std)]

mod abi;
mod kinds;

pub use abi::{
    sc, syscall_by_op, sysop, tp, x86_64_syscall_nr, x86_ia32_syscall_nrs, KernelOffsets, Syscall,
    Tracepoint, KERNEL_OFFSET_SOURCES, SYSCALLS, SYSCALL_SLOTS, X86_64_SYSCALL_NR,
    X86_IA32_SYSCALL_NR,
};
pub use kinds::{kind, EventKind, Family};

/// Bumped whenever a wire type changes shape. Userspace rejects records of another version.
pub const WIRE_VERSION: u16 = 3;

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
    /// Kernel path resolution (fd or dentry walk) failed on a kernel read; the event fell back to the
    /// spelled path (or was dropped when there was none).
    pub const RESOLVE_FAILED: u32 = 2 * kind::MAX + 3;
    /// The dentry/mount walk hit its depth bound ([`super::RESOLVE_DEPTH`] components).
    pub const RESOLVE_TOO_DEEP: u32 = 2 * kind::MAX + 4;
    /// The resolved path was longer than the buffer and was cut (flagged on the event).
    pub const RESOLVE_TOO_LONG: u32 = 2 * kind::MAX + 5;
    /// An io_uring request used a registered (fixed) file, which the probes cannot map to a path.
    pub const IO_URING_FIXED_FILE: u32 = 2 * kind::MAX + 6;
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
    /// The probe looked at the caller's fds 0 and 1 (exec, connect): the two bits below are its answer,
    /// so userspace need not ask procfs (which may be too late: the process may be gone).
    pub const STDIO_CHECKED: u16 = 1 << 4;
    /// fd 0 is a socket (valid with [`STDIO_CHECKED`]).
    pub const STDIN_SOCKET: u16 = 1 << 5;
    /// fd 1 is a socket (valid with [`STDIO_CHECKED`]).
    pub const STDOUT_SOCKET: u16 = 1 << 6;
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
    /// Bytes (with the NUL) of `exe` and `cwd`; 0 = the kernel walk did not run or failed.
    pub exe_len: u16,
    pub cwd_len: u16,
    /// [`resolve`] flags of `exe` (`KERNEL`, `TRUNCATED`, `DELETED`) and of `cwd`.
    pub exe_flags: u16,
    pub cwd_flags: u16,
    pub _pad: u32,
    pub filename: [u8; FILENAME_LEN],
    pub args: [u8; ARGS_LEN],
    /// The new image's executable (`mm->exe_file`), resolved in the kernel from its dentry and mount:
    /// canonical, and free of the race of reading `/proc/PID/exe` later. `/` for a file with no path
    /// (memfd and other pseudo files).
    pub exe: [u8; RESOLVED_BUF],
    /// The working directory at exec (`fs->pwd`), resolved the same way: relative filenames and script
    /// arguments are resolved against it.
    pub cwd: [u8; RESOLVED_BUF],
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

/// Bytes of the kernel-resolved path buffer. The walk writes each component with a bounded 256-byte
/// read at an offset below 256, so paths are complete up to [`RESOLVED_PATH_MAX`] bytes.
pub const RESOLVED_BUF: usize = 512;
/// Longest resolved path kept whole; longer ones are cut and flagged ([`resolve::TRUNCATED`]).
pub const RESOLVED_PATH_MAX: usize = 256;
/// Most path components the dentry walk follows (mount crossings included).
pub const RESOLVE_DEPTH: usize = 32;

/// Flags in [`FileEvent::resolve`]: how the path was obtained and why the event passed the filter.
pub mod resolve {
    /// `path` was built in the kernel from the file's dentry and mount (canonical).
    pub const KERNEL: u16 = 1 << 0;
    /// Matched through the watched-inode map (the same file under another name: hard link).
    pub const BY_INODE: u16 = 1 << 1;
    /// The resolved path was cut at [`super::RESOLVED_PATH_MAX`] bytes.
    pub const TRUNCATED: u16 = 1 << 2;
    /// Through io_uring (`op` is then the io_uring opcode).
    pub const IO_URING: u16 = 1 << 3;
    /// Kept regardless of path: the mode sets setuid or setgid.
    pub const SETID_MODE: u16 = 1 << 4;
    /// Kept regardless of path: a `security.capability` xattr (file capabilities).
    pub const CAPABILITY: u16 = 1 << 5;
    /// A spelled path the kernel could not judge (relative, `.`/`..` components, `/proc/*/root`): sent
    /// for userspace to canonicalise and filter.
    pub const UNJUDGED: u16 = 1 << 6;
    /// Kernel resolution was attempted and failed: `path` is the spelled one.
    pub const FAILED: u16 = 1 << 7;
    /// The file has no links left (`inode->i_nlink == 0`): deleted or replaced since it was opened.
    pub const DELETED: u16 = 1 << 8;
}

/// `kind::FILE_*` and `kind::SENSITIVE_READ`: a file operation on a watched path (or a watched inode),
/// a setid mode or file capability anywhere, or a read of a credential store.
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
    /// Directory fd the spelled path is relative to (AT_FDCWD = -100), or the fd of fd-based calls.
    pub dirfd: i32,
    pub path_len: u16,
    pub path2_len: u16,
    /// Syscall result: 0/fd on success, `-errno` on failure.
    pub result: i64,
    /// The operation: a syscall op id (`sysop`), or the io_uring opcode when `resolve::IO_URING`.
    pub op: u32,
    /// `resolve::*` flags.
    pub resolve: u16,
    pub spelled_len: u16,
    /// Kernel device number (`super_block.s_dev`, major << 20 | minor) of the object, when resolved.
    pub dev: u32,
    /// The inode map's class for this inode (see [`inode_class`]), 0 when not in the map.
    pub class: u32,
    pub ino: u64,
    /// The path operated on: kernel-resolved when `resolve::KERNEL`, else as the caller spelled it
    /// (rename/link: the source; symlink: the link target text).
    pub path: [u8; RESOLVED_BUF],
    /// rename/link/symlink: the new name; xattr calls: the attribute name.
    pub path2: [u8; PATH_LEN],
    /// The path as the caller passed it, when it differs in kind from `path` (kernel-resolved events).
    pub spelled: [u8; PATH_LEN],
}

/// Key of the watched/sensitive inode map (`INODES`): kernel device number and inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InodeKey {
    pub dev: u32,
    pub _pad: u32,
    pub ino: u64,
}

/// Values of the inode map: bit 0 = watched file (writes through any name are watched writes); bits 8..16
/// = sensitive class (reads are `SENSITIVE_READ` events), one of [`SensitiveClass`].
pub mod inode_class {
    pub const WATCHED: u32 = 1;
    pub const SENSITIVE_SHIFT: u32 = 8;
    pub const SENSITIVE_MASK: u32 = 0xff << SENSITIVE_SHIFT;
}

/// Classes of sensitive files (credential stores and kernel interfaces) for `SENSITIVE_READ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SensitiveClass {
    AccountShadow = 1,
    Sudoers = 2,
    SshPrivateKey = 3,
    SshHostKey = 4,
    CloudCredentials = 5,
    KubeCredentials = 6,
    KernelMemory = 7,
    Keyring = 8,
}

impl SensitiveClass {
    pub const ALL: &'static [SensitiveClass] = &[
        SensitiveClass::AccountShadow,
        SensitiveClass::Sudoers,
        SensitiveClass::SshPrivateKey,
        SensitiveClass::SshHostKey,
        SensitiveClass::CloudCredentials,
        SensitiveClass::KubeCredentials,
        SensitiveClass::KernelMemory,
        SensitiveClass::Keyring,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SensitiveClass::AccountShadow => "account_shadow",
            SensitiveClass::Sudoers => "sudoers",
            SensitiveClass::SshPrivateKey => "ssh_private_key",
            SensitiveClass::SshHostKey => "ssh_host_key",
            SensitiveClass::CloudCredentials => "cloud_credentials",
            SensitiveClass::KubeCredentials => "kube_credentials",
            SensitiveClass::KernelMemory => "kernel_memory",
            SensitiveClass::Keyring => "keyring",
        }
    }

    pub fn from_id(id: u8) -> Option<SensitiveClass> {
        SensitiveClass::ALL.iter().copied().find(|c| *c as u8 == id)
    }
}

/// io_uring opcodes (`IORING_OP_*`, include/uapi/linux/io_uring.h) the probes and the docs name.
pub mod io_uring_op {
    pub const WRITEV: u8 = 2;
    pub const WRITE_FIXED: u8 = 5;
    pub const FALLOCATE: u8 = 17;
    pub const OPENAT: u8 = 18;
    pub const WRITE: u8 = 23;
    pub const OPENAT2: u8 = 28;
    pub const SPLICE: u8 = 30;
    pub const TEE: u8 = 33;
    pub const FSETXATTR: u8 = 41;
    pub const FTRUNCATE: u8 = 55;
    pub const WRITEV_FIXED: u8 = 61;

    /// Opcodes that modify the file behind their fd (a write to a watched file when it is watched).
    pub const fn writes(op: u8) -> bool {
        matches!(
            op,
            WRITEV
                | WRITE_FIXED
                | FALLOCATE
                | WRITE
                | SPLICE
                | TEE
                | FSETXATTR
                | FTRUNCATE
                | WRITEV_FIXED
        )
    }

    /// The opcode's name, for logs.
    pub fn name(op: u8) -> &'static str {
        const NAMES: [&str; 62] = [
            "NOP",
            "READV",
            "WRITEV",
            "FSYNC",
            "READ_FIXED",
            "WRITE_FIXED",
            "POLL_ADD",
            "POLL_REMOVE",
            "SYNC_FILE_RANGE",
            "SENDMSG",
            "RECVMSG",
            "TIMEOUT",
            "TIMEOUT_REMOVE",
            "ACCEPT",
            "ASYNC_CANCEL",
            "LINK_TIMEOUT",
            "CONNECT",
            "FALLOCATE",
            "OPENAT",
            "CLOSE",
            "FILES_UPDATE",
            "STATX",
            "READ",
            "WRITE",
            "FADVISE",
            "MADVISE",
            "SEND",
            "RECV",
            "OPENAT2",
            "EPOLL_CTL",
            "SPLICE",
            "PROVIDE_BUFFERS",
            "REMOVE_BUFFERS",
            "TEE",
            "SHUTDOWN",
            "RENAMEAT",
            "UNLINKAT",
            "MKDIRAT",
            "SYMLINKAT",
            "LINKAT",
            "MSG_RING",
            "FSETXATTR",
            "SETXATTR",
            "FGETXATTR",
            "GETXATTR",
            "SOCKET",
            "URING_CMD",
            "SEND_ZC",
            "SENDMSG_ZC",
            "READ_MULTISHOT",
            "WAITID",
            "FUTEX_WAIT",
            "FUTEX_WAKE",
            "FUTEX_WAITV",
            "FIXED_FD_INSTALL",
            "FTRUNCATE",
            "BIND",
            "LISTEN",
            "RECV_ZC",
            "EPOLL_WAIT",
            "READV_FIXED",
            "WRITEV_FIXED",
        ];
        NAMES.get(op as usize).copied().unwrap_or("UNKNOWN")
    }
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

/// Watched prefixes, written into `.rodata` before load. Each prefix is also given as 8-byte words with
/// masks (`words[i][w] == path_word[w] & masks[i][w]` for all `w` means "path starts with prefix i"): the
/// probes compare words without branching, which keeps the verifier's work small.
///
/// `tops` is the same list cut after each prefix's first component (`/etc/cron.d/` → `/etc/`, at most
/// [`WATCH_TOP_LEN`] bytes; duplicates once): a path's first component, known before the rest of it is
/// written, rules out every prefix it does not start (each top is a prefix of its prefix, so a path that
/// matches no top matches no prefix).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WatchList {
    pub count: u32,
    pub lens: [u32; WATCH_MAX],
    /// Entries of `tops` in use.
    pub top_count: u32,
    pub prefixes: [[u8; WATCH_PREFIX_LEN]; WATCH_MAX],
    pub words: [[u64; WATCH_WORDS]; WATCH_MAX],
    pub masks: [[u64; WATCH_WORDS]; WATCH_MAX],
    pub tops: [[u64; WATCH_TOP_WORDS]; WATCH_MAX],
    pub top_masks: [[u64; WATCH_TOP_WORDS]; WATCH_MAX],
}

/// 8-byte words per watched prefix.
pub const WATCH_WORDS: usize = WATCH_PREFIX_LEN / 8;
/// Bytes of a prefix's first component compared before a resolved path is written out.
pub const WATCH_TOP_LEN: usize = 32;
pub const WATCH_TOP_WORDS: usize = WATCH_TOP_LEN / 8;

impl WatchList {
    /// A list of `prefixes` (each shorter than [`WATCH_PREFIX_LEN`]; at most [`WATCH_MAX`]).
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a [u8]>) -> WatchList {
        let mut w = WatchList {
            count: 0,
            lens: [0; WATCH_MAX],
            top_count: 0,
            prefixes: [[0; WATCH_PREFIX_LEN]; WATCH_MAX],
            words: [[0; WATCH_WORDS]; WATCH_MAX],
            masks: [[0; WATCH_WORDS]; WATCH_MAX],
            tops: [[0; WATCH_TOP_WORDS]; WATCH_MAX],
            top_masks: [[0; WATCH_TOP_WORDS]; WATCH_MAX],
        };
        for (i, p) in prefixes.into_iter().take(WATCH_MAX).enumerate() {
            let p = &p[..p.len().min(WATCH_PREFIX_LEN)];
            w.count += 1;
            w.lens[i] = p.len() as u32;
            w.prefixes[i][..p.len()].copy_from_slice(p);
            pack(p, &mut w.words[i], &mut w.masks[i]);
            // The first component with its slash: "/etc/cron.d/" → "/etc/", "/et" → "/et".
            let end = p
                .iter()
                .skip(1)
                .position(|b| *b == b'/')
                .map_or(p.len(), |k| k + 2);
            let top = &p[..end.min(WATCH_TOP_LEN)];
            let (mut words, mut masks) = ([0; WATCH_TOP_WORDS], [0; WATCH_TOP_WORDS]);
            pack(top, &mut words, &mut masks);
            let used = w.top_count as usize;
            if !w.tops[..used]
                .iter()
                .zip(&w.top_masks[..used])
                .any(|t| t == (&words, &masks))
            {
                w.tops[used] = words;
                w.top_masks[used] = masks;
                w.top_count += 1;
            }
        }
        w
    }
}

/// `bytes` as little-endian 8-byte words with masks of the bytes given.
fn pack(bytes: &[u8], words: &mut [u64], masks: &mut [u64]) {
    for (j, b) in bytes.iter().enumerate() {
        let shift = 8 * (j % 8);
        words[j / 8] |= u64::from(*b) << shift;
        masks[j / 8] |= 0xff << shift;
    }
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
    /// The raw syscall dispatcher's entry slots to run (bit `slot`: 64-bit syscall numbers, then
    /// `SYSCALL_SLOTS` + 32-bit numbers): every other syscall leaves the entry dispatcher at once, without
    /// a helper call or a tail call. Syscalls whose exit reads the arguments itself
    /// ([`Syscall::exit_reads_args`]) are left out: their entry programs have nothing to do there.
    pub hooked_enter: [u64; HOOKED_WORDS],
    /// The same for the exit dispatcher: every slot a program may fill.
    pub hooked_exit: [u64; HOOKED_WORDS],
}

/// Words of [`ProbeConfig::hooked_enter`] and [`ProbeConfig::hooked_exit`].
pub const HOOKED_WORDS: usize = (2 * abi::SYSCALL_SLOTS as usize) / 64;

impl ProbeConfig {
    /// Marks dispatcher slot `slot` of the entry or the exit array as one to run.
    pub fn hook_slot(&mut self, slot: u32, exit: bool) {
        let bits = if exit {
            &mut self.hooked_exit
        } else {
            &mut self.hooked_enter
        };
        if let Some(w) = bits.get_mut(slot as usize / 64) {
            *w |= 1 << (slot % 64);
        }
    }
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
const _: () = assert!(
    core::mem::size_of::<ExecEvent>() == 96 + 16 + FILENAME_LEN + ARGS_LEN + 2 * RESOLVED_BUF
);
const _: () = assert!(core::mem::size_of::<ForkEvent>() == 96 + 16);
const _: () = assert!(core::mem::size_of::<ExitEvent>() == 96 + 8);
const _: () = assert!(core::mem::size_of::<NetEvent>() == 96 + 8 + 32 + 8);
const _: () = assert!(ARGS_LEN.is_power_of_two());
const _: () = assert!(core::mem::size_of::<FileEvent>() == 96 + 56 + RESOLVED_BUF + 2 * PATH_LEN);
const _: () = assert!(core::mem::size_of::<InodeKey>() == 16);
const _: () = assert!(
    core::mem::size_of::<WatchList>()
        == 8 + 4 * WATCH_MAX + 3 * WATCH_PREFIX_LEN * WATCH_MAX + 2 * WATCH_TOP_LEN * WATCH_MAX
);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], Copy, made only of integers and byte arrays, and have no
    // implicit padding (the size assertions above pin their layout).
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::ProbeConfig {}
    unsafe impl aya::Pod for super::WatchList {}
    unsafe impl aya::Pod for super::InodeKey {}
}

#[cfg(test)]
mod watch_tests {
    use super::*;

    /// The probes' compare: the first `W` little-endian words of `path` (zero-padded) against entry `i`.
    fn hit<const W: usize>(path: &[u8], words: &[u64; W], masks: &[u64; W]) -> bool {
        let mut buf = [0u8; 64];
        let n = path.len().min(8 * W);
        buf[..n].copy_from_slice(&path[..n]);
        (0..W).all(|k| {
            let have = u64::from_le_bytes(buf[8 * k..8 * k + 8].try_into().unwrap());
            have & masks[k] == words[k]
        })
    }

    fn watched(w: &WatchList, path: &[u8]) -> bool {
        (0..w.count as usize).any(|i| hit(path, &w.words[i], &w.masks[i]))
    }

    /// What the walk has written when it asks: `/`, the first component, `/` (paths of two or more
    /// components; a one-component path goes straight to the full compare).
    fn top_watched(w: &WatchList, path: &[u8]) -> bool {
        let end = path[1..].iter().position(|b| *b == b'/').unwrap() + 2;
        (0..w.top_count as usize).any(|i| hit(&path[..end], &w.tops[i], &w.top_masks[i]))
    }

    #[test]
    fn a_path_the_first_component_rules_out_is_never_watched() {
        let long = format!("/{}/x", "c".repeat(40));
        let lists: [&[&str]; 4] = [
            &[
                "/etc",
                "/root/.ssh/",
                "/home/",
                "/var/spool/cron",
                "/var/log/au",
                "/usr/lib/systemd",
            ],
            &["/et", "/e", "/lib/x86_64-linux-gnu/security"],
            &["/"],
            &[long.as_str(), "/v"],
        ];
        let firsts = [
            "etc",
            "et",
            "e",
            "etcetera",
            "root",
            "roo",
            "home",
            "var",
            "usr",
            "lib",
            "tmp",
            "dev",
            "v",
            "x",
            "",
            &"c".repeat(40),
            &"c".repeat(31),
            &"c".repeat(32),
            &"c".repeat(33),
        ];
        let rests = [
            "x",
            "spool/cron/crontabs/root",
            ".ssh/id_rsa",
            "log/audit/audit.log",
            "a/b",
        ];
        let mut ruled_out = 0;
        for list in lists {
            let w = WatchList::new(list.iter().map(|p| p.as_bytes()));
            assert_eq!(w.count as usize, list.len());
            for first in firsts {
                for rest in rests {
                    let path = format!("/{first}/{rest}");
                    let (full, top) = (
                        watched(&w, path.as_bytes()),
                        top_watched(&w, path.as_bytes()),
                    );
                    assert!(
                        !full || top,
                        "{list:?}: {path} is watched but its first component ruled it out"
                    );
                    ruled_out += usize::from(!top);
                }
            }
        }
        // The filter does rule paths out (it is not always "maybe").
        assert!(ruled_out > 100, "{ruled_out}");
    }

    #[test]
    fn tops_are_first_components_once() {
        let w = WatchList::new(["/etc/cron.d/", "/etc/ssh", "/etc", "/et", "/"].map(str::as_bytes));
        let tops: Vec<Vec<u8>> = (0..w.top_count as usize)
            .map(|i| {
                let bytes: Vec<u8> = w.tops[i].iter().flat_map(|t| t.to_le_bytes()).collect();
                let len = w.top_masks[i]
                    .iter()
                    .map(|m| m.count_ones() as usize / 8)
                    .sum();
                bytes[..len].to_vec()
            })
            .collect();
        assert_eq!(tops, [&b"/etc/"[..], b"/etc", b"/et", b"/"]);
    }
}
