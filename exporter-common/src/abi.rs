//! The kernel ABI the probes depend on, in one table: tracepoint record layouts, syscall argument layouts,
//! and the kernel struct member offsets resolved from BTF.
//!
//! The probes read fields through these tables (`Tracepoint::field`, `Syscall::arg`, evaluated at compile
//! time), and userspace checks exactly the same tables against tracefs `format` files before attaching, so
//! the check guards what the probes actually read.
pub use crate::kinds::{sc, sysop, SYSCALLS};

/// Fields of one tracepoint record the probes read, with their byte offsets on the reference kernel.
#[derive(Clone, Copy, Debug)]
pub struct Tracepoint {
    pub category: &'static str,
    pub name: &'static str,
    pub fields: &'static [(&'static str, usize)],
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn lookup(fields: &[(&str, usize)], name: &str) -> usize {
    let mut i = 0;
    while i < fields.len() {
        if same(fields[i].0, name) {
            return fields[i].1;
        }
        i += 1;
    }
    panic!("field not in the ABI table")
}

impl Tracepoint {
    /// Offset of `name`; use in a `const` context so a typo fails the build.
    pub const fn field(&self, name: &str) -> usize {
        lookup(self.fields, name)
    }
}

/// Tracepoints read at fixed offsets (besides the syscall ones below).
pub mod tp {
    use super::Tracepoint;

    pub const SCHED_PROCESS_EXEC: Tracepoint = Tracepoint {
        category: "sched",
        name: "sched_process_exec",
        // __data_loc char[] filename: low 16 bits are the offset of the string in the record.
        fields: &[("filename", 8)],
    };
    pub const SCHED_PROCESS_FORK: Tracepoint = Tracepoint {
        category: "sched",
        name: "sched_process_fork",
        fields: &[("child_pid", 20)],
    };
    pub const SCHED_PROCESS_EXIT: Tracepoint = Tracepoint {
        category: "sched",
        name: "sched_process_exit",
        fields: &[("group_dead", 32)],
    };
    pub const INET_SOCK_SET_STATE: Tracepoint = Tracepoint {
        category: "sock",
        name: "inet_sock_set_state",
        fields: &[
            ("skaddr", 8),
            ("oldstate", 16),
            ("newstate", 20),
            ("sport", 24),
            ("dport", 26),
            ("family", 28),
            ("protocol", 30),
            ("saddr", 32),
            ("daddr", 36),
            ("saddr_v6", 40),
            ("daddr_v6", 56),
        ],
    };
    pub const IO_URING_CREATE: Tracepoint = Tracepoint {
        category: "io_uring",
        name: "io_uring_create",
        fields: &[("fd", 8), ("sq_entries", 24), ("flags", 32)],
    };
    pub const IO_URING_SUBMIT_REQ: Tracepoint = Tracepoint {
        category: "io_uring",
        name: "io_uring_submit_req",
        fields: &[
            ("req", 16),
            ("opcode", 32),
            ("flags", 40),
            ("sq_thread", 48),
        ],
    };
    /// A request's file looked up from a (non-fixed) fd, in the submitter's file table.
    pub const IO_URING_FILE_GET: Tracepoint = Tracepoint {
        category: "io_uring",
        name: "io_uring_file_get",
        fields: &[("req", 16), ("fd", 32)],
    };
    pub const IO_URING_COMPLETE: Tracepoint = Tracepoint {
        category: "io_uring",
        name: "io_uring_complete",
        fields: &[("req", 16), ("res", 32)],
    };
    /// `syscalls:sys_exit_*`: the return value.
    pub const SYS_EXIT: Tracepoint = Tracepoint {
        category: "syscalls",
        name: "sys_exit_*",
        fields: &[("ret", 16)],
    };
}

/// One hooked syscall: the `sys_enter_<name>` fields the probe reads, the event kind it reports and its
/// operation id (carried in `SysEvent::op`).
#[derive(Clone, Copy, Debug)]
pub struct Syscall {
    pub name: &'static str,
    pub kind: u16,
    pub op: u32,
    pub args: &'static [(&'static str, usize)],
}

impl Syscall {
    /// Offset of argument `name` in the `sys_enter_*` record; use in a `const` context.
    pub const fn arg(&self, name: &str) -> usize {
        lookup(self.args, name)
    }

    /// Offset of the n-th argument (they start at 16 and are 8 bytes apart).
    pub const fn nth(&self, n: usize) -> usize {
        self.args[n].1
    }

    /// Whether this call's exit program, reached through the raw dispatcher, reads the call's arguments
    /// itself (from the user registers saved at entry, which still hold them at exit), so its entry
    /// program has nothing to do there and the dispatcher does not run it. The opens whose arguments are
    /// all registers; not openat2, whose flags are in user memory (another thread could rewrite them while
    /// the call runs: they are read at entry, next to the kernel's own copy).
    pub const fn exit_reads_args(&self) -> bool {
        let mut i = 0;
        while i < EXIT_READS_ARGS.len() {
            if EXIT_READS_ARGS[i] == self.op {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// Operation ids of the syscalls [`Syscall::exit_reads_args`] is true for.
const EXIT_READS_ARGS: [u32; 4] = [
    crate::sysop::OPENAT,
    crate::sysop::OPEN,
    crate::sysop::CREAT,
    crate::sysop::OPEN_BY_HANDLE_AT,
];

/// The syscall with operation id `op`.
pub fn syscall_by_op(op: u32) -> Option<&'static Syscall> {
    SYSCALLS.iter().find(|s| s.op == op)
}

/// Kernel struct member offsets, read from `/sys/kernel/btf/vmlinux` by userspace and written into the
/// probes' `.rodata` before load (Rust eBPF gets no CO-RE field relocations). Only members a probe reads
/// are here. A zero `valid` means "unknown": probes then send only what helpers give.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    pub valid: u32,
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_cred: u32,
    pub task_start_boottime: u32,
    pub task_mm: u32,
    pub task_files: u32,
    pub task_loginuid: u32,
    pub task_exit_code: u32,
    pub cred_euid: u32,
    pub cred_egid: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub files_fdt: u32,
    pub fdtable_max_fds: u32,
    pub fdtable_fd: u32,
    pub file_private_data: u32,
    pub socket_sk: u32,
    pub sk_daddr: u32,
    pub sk_rcv_saddr: u32,
    pub sk_dport: u32,
    pub sk_num: u32,
    pub sk_family: u32,
    pub sk_v6_daddr: u32,
    pub sk_v6_rcv_saddr: u32,
    pub sk_protocol: u32,
    pub sk_err: u32,
    pub sk_state: u32,
    pub task_fs: u32,
    pub fs_pwd: u32,
    pub fs_root: u32,
    pub file_f_path: u32,
    pub file_f_inode: u32,
    pub file_f_mode: u32,
    pub file_f_flags: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub dentry_d_parent: u32,
    pub dentry_d_name: u32,
    pub dentry_d_inode: u32,
    pub dentry_d_sb: u32,
    pub qstr_name: u32,
    pub inode_i_ino: u32,
    pub inode_i_mode: u32,
    pub inode_i_nlink: u32,
    pub mm_exe_file: u32,
    pub inode_i_sb: u32,
    pub sb_s_dev: u32,
    pub vfsmount_mnt_root: u32,
    pub mount_mnt: u32,
    pub mount_mnt_parent: u32,
    pub mount_mnt_mountpoint: u32,
    pub io_kiocb_opcode: u32,
    /// `struct pt_regs` members holding syscall arguments 0..5 and the syscall number, for the raw
    /// `sys_enter`/`sys_exit` dispatcher (x86-64 names; absent elsewhere, where the syscall probes fall
    /// back to `syscalls:` tracepoints).
    pub regs_arg0: u32,
    pub regs_arg1: u32,
    pub regs_arg2: u32,
    pub regs_arg3: u32,
    pub regs_arg4: u32,
    pub regs_arg5: u32,
    pub regs_nr: u32,
    /// The same for 32-bit (compat) syscalls: bx, cx, dx, si, di, bp.
    pub regs_compat_arg0: u32,
    pub regs_compat_arg1: u32,
    pub regs_compat_arg2: u32,
    pub regs_compat_arg3: u32,
    pub regs_compat_arg4: u32,
    pub regs_compat_arg5: u32,
    /// `current->thread_info.status` (TS_COMPAT: a 32-bit syscall); `thread_info_status` 0 = unknown.
    pub task_thread_info: u32,
    pub thread_info_status: u32,
}

impl KernelOffsets {
    /// Whether the raw syscall dispatcher can read arguments and numbers on this kernel.
    pub fn have_syscall_regs(&self) -> bool {
        self.valid != 0
            && [
                self.regs_arg0,
                self.regs_arg1,
                self.regs_arg2,
                self.regs_arg3,
                self.regs_arg4,
                self.regs_arg5,
                self.regs_nr,
                self.regs_compat_arg0,
                self.regs_compat_arg1,
                self.regs_compat_arg2,
                self.regs_compat_arg3,
                self.regs_compat_arg4,
                self.regs_compat_arg5,
                // Without it a 32-bit call could not be told from a 64-bit one.
                self.thread_info_status,
            ]
            .iter()
            .all(|&o| o != 0)
    }
}

/// Syscall numbers below this can be hooked. The dispatcher's program arrays hold twice as many slots:
/// 64-bit syscalls at their number, 32-bit (compat) ones at `SYSCALL_SLOTS + number`.
pub const SYSCALL_SLOTS: u32 = 512;

/// The 32-bit (ia32 compat) numbers that reach each hooked syscall's kernel code: their own numbers, the
/// 16-bit-id and 64-bit-length variants, and `socketcall` for connect (its exit only reads what the TCP
/// state tracepoint parked). Accept through `socketcall` is not mapped: any socketcall returning an fd
/// would look like an accept. Checked against `asm/unistd_32.h` in a test.
pub const X86_IA32_SYSCALL_NR: &[(&str, &[u32])] = &[
    ("openat", &[295]),
    ("open", &[5]),
    ("creat", &[8]),
    ("unlinkat", &[301]),
    ("unlink", &[10]),
    ("renameat2", &[353]),
    ("renameat", &[302]),
    ("rename", &[38]),
    ("fchmodat", &[306]),
    ("chmod", &[15]),
    ("fchownat", &[298]),
    ("chown", &[182, 212]),
    ("lchown", &[16, 198]),
    ("linkat", &[303]),
    ("link", &[9]),
    ("symlinkat", &[304]),
    ("symlink", &[83]),
    ("openat2", &[437]),
    ("open_by_handle_at", &[342]),
    ("truncate", &[92, 193]),
    ("ftruncate", &[93, 194]),
    ("fchmod", &[94]),
    ("fchmodat2", &[452]),
    ("fchown", &[95, 207]),
    ("setxattr", &[226]),
    ("lsetxattr", &[227]),
    ("fsetxattr", &[228]),
    ("removexattr", &[235]),
    ("lremovexattr", &[236]),
    ("fremovexattr", &[237]),
    ("setuid", &[23, 213]),
    ("setgid", &[46, 214]),
    ("setreuid", &[70, 203]),
    ("setregid", &[71, 204]),
    ("setresuid", &[164, 208]),
    ("setresgid", &[170, 210]),
    ("ptrace", &[26]),
    ("bpf", &[357]),
    ("kill", &[37]),
    ("tkill", &[238]),
    ("tgkill", &[270]),
    ("memfd_create", &[356]),
    ("mount", &[21]),
    ("umount", &[22, 52]),
    ("dup", &[41]),
    ("dup2", &[63]),
    ("dup3", &[330]),
    ("fcntl", &[55, 221]),
    ("connect", &[362, 102]),
    ("accept4", &[364]),
    ("init_module", &[128]),
    ("finit_module", &[350]),
];

/// The 32-bit numbers of hooked syscall `name` (empty: none).
pub fn x86_ia32_syscall_nrs(name: &str) -> &'static [u32] {
    X86_IA32_SYSCALL_NR
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, nrs)| nrs)
}

/// x86-64 syscall numbers of every hooked syscall (`SYSCALLS` and the network family's connect and
/// accept), for the dispatcher's program arrays. `umount` is the kernel's `umount2` entry point.
/// Checked against the C library's `asm/unistd_64.h` in a test.
pub const X86_64_SYSCALL_NR: &[(&str, u32)] = &[
    ("openat", 257),
    ("open", 2),
    ("creat", 85),
    ("unlinkat", 263),
    ("unlink", 87),
    ("renameat2", 316),
    ("renameat", 264),
    ("rename", 82),
    ("fchmodat", 268),
    ("chmod", 90),
    ("fchownat", 260),
    ("chown", 92),
    ("lchown", 94),
    ("linkat", 265),
    ("link", 86),
    ("symlinkat", 266),
    ("symlink", 88),
    ("openat2", 437),
    ("open_by_handle_at", 304),
    ("truncate", 76),
    ("ftruncate", 77),
    ("fchmod", 91),
    ("fchmodat2", 452),
    ("fchown", 93),
    ("setxattr", 188),
    ("lsetxattr", 189),
    ("fsetxattr", 190),
    ("removexattr", 197),
    ("lremovexattr", 198),
    ("fremovexattr", 199),
    ("setuid", 105),
    ("setgid", 106),
    ("setreuid", 113),
    ("setregid", 114),
    ("setresuid", 117),
    ("setresgid", 119),
    ("ptrace", 101),
    ("bpf", 321),
    ("kill", 62),
    ("tkill", 200),
    ("tgkill", 234),
    ("memfd_create", 319),
    ("mount", 165),
    ("umount", 166),
    ("dup", 32),
    ("dup2", 33),
    ("dup3", 292),
    ("fcntl", 72),
    ("connect", 42),
    ("accept", 43),
    ("accept4", 288),
    ("init_module", 175),
    ("finit_module", 313),
];

/// The x86-64 number of hooked syscall `name`.
pub fn x86_64_syscall_nr(name: &str) -> Option<u32> {
    X86_64_SYSCALL_NR
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
}

/// Where each [`KernelOffsets`] member comes from: (field, BTF struct, BTF member, required).
/// Userspace resolves exactly these rows; an optional member that is absent stays 0.
pub const KERNEL_OFFSET_SOURCES: &[(&str, &str, &str, bool)] = &[
    ("task_pid", "task_struct", "pid", true),
    ("task_tgid", "task_struct", "tgid", true),
    ("task_real_parent", "task_struct", "real_parent", true),
    ("task_group_leader", "task_struct", "group_leader", true),
    ("task_cred", "task_struct", "cred", true),
    ("task_start_boottime", "task_struct", "start_boottime", true),
    ("task_mm", "task_struct", "mm", true),
    ("task_files", "task_struct", "files", true),
    // Absent without CONFIG_AUDIT: 0 tells the probes to skip it.
    ("task_loginuid", "task_struct", "loginuid", false),
    ("task_exit_code", "task_struct", "exit_code", true),
    ("cred_euid", "cred", "euid", true),
    ("cred_egid", "cred", "egid", true),
    ("mm_arg_start", "mm_struct", "arg_start", true),
    ("mm_arg_end", "mm_struct", "arg_end", true),
    ("files_fdt", "files_struct", "fdt", true),
    ("fdtable_max_fds", "fdtable", "max_fds", true),
    ("fdtable_fd", "fdtable", "fd", true),
    ("file_private_data", "file", "private_data", true),
    ("socket_sk", "socket", "sk", true),
    ("sk_daddr", "sock_common", "skc_daddr", true),
    ("sk_rcv_saddr", "sock_common", "skc_rcv_saddr", true),
    ("sk_dport", "sock_common", "skc_dport", true),
    ("sk_num", "sock_common", "skc_num", true),
    ("sk_family", "sock_common", "skc_family", true),
    ("sk_v6_daddr", "sock_common", "skc_v6_daddr", true),
    ("sk_v6_rcv_saddr", "sock_common", "skc_v6_rcv_saddr", true),
    ("sk_protocol", "sock", "sk_protocol", true),
    ("sk_err", "sock", "sk_err", true),
    ("sk_state", "sock_common", "skc_state", true),
    // Kernel-resolved file paths (exporter-ebpf/src/path.rs): fd -> file -> f_path -> dentry/mount walk.
    ("task_fs", "task_struct", "fs", true),
    ("fs_pwd", "fs_struct", "pwd", true),
    ("fs_root", "fs_struct", "root", true),
    ("file_f_path", "file", "f_path", true),
    ("file_f_inode", "file", "f_inode", true),
    ("file_f_mode", "file", "f_mode", true),
    ("file_f_flags", "file", "f_flags", true),
    ("path_mnt", "path", "mnt", true),
    ("path_dentry", "path", "dentry", true),
    ("dentry_d_parent", "dentry", "d_parent", true),
    ("dentry_d_name", "dentry", "d_name", true),
    ("dentry_d_inode", "dentry", "d_inode", true),
    ("dentry_d_sb", "dentry", "d_sb", true),
    ("qstr_name", "qstr", "name", true),
    ("inode_i_ino", "inode", "i_ino", true),
    ("inode_i_mode", "inode", "i_mode", true),
    ("inode_i_nlink", "inode", "i_nlink", true),
    ("mm_exe_file", "mm_struct", "exe_file", true),
    ("inode_i_sb", "inode", "i_sb", true),
    ("sb_s_dev", "super_block", "s_dev", true),
    ("vfsmount_mnt_root", "vfsmount", "mnt_root", true),
    ("mount_mnt", "mount", "mnt", true),
    ("mount_mnt_parent", "mount", "mnt_parent", true),
    ("mount_mnt_mountpoint", "mount", "mnt_mountpoint", true),
    ("io_kiocb_opcode", "io_kiocb", "opcode", false),
    // The raw syscall dispatcher (x86-64 register names; optional: elsewhere the `syscalls:`
    // tracepoints are used).
    ("regs_arg0", "pt_regs", "di", false),
    ("regs_arg1", "pt_regs", "si", false),
    ("regs_arg2", "pt_regs", "dx", false),
    ("regs_arg3", "pt_regs", "r10", false),
    ("regs_arg4", "pt_regs", "r8", false),
    ("regs_arg5", "pt_regs", "r9", false),
    ("regs_nr", "pt_regs", "orig_ax", false),
    ("regs_compat_arg0", "pt_regs", "bx", false),
    ("regs_compat_arg1", "pt_regs", "cx", false),
    ("regs_compat_arg2", "pt_regs", "dx", false),
    ("regs_compat_arg3", "pt_regs", "si", false),
    ("regs_compat_arg4", "pt_regs", "di", false),
    ("regs_compat_arg5", "pt_regs", "bp", false),
    ("task_thread_info", "task_struct", "thread_info", false),
    ("thread_info_status", "thread_info", "status", false),
];

impl KernelOffsets {
    /// The member named `field` (a row of [`KERNEL_OFFSET_SOURCES`]).
    pub fn slot(&mut self, field: &str) -> Option<&mut u32> {
        Some(match field {
            "task_pid" => &mut self.task_pid,
            "task_tgid" => &mut self.task_tgid,
            "task_real_parent" => &mut self.task_real_parent,
            "task_group_leader" => &mut self.task_group_leader,
            "task_cred" => &mut self.task_cred,
            "task_start_boottime" => &mut self.task_start_boottime,
            "task_mm" => &mut self.task_mm,
            "task_files" => &mut self.task_files,
            "task_loginuid" => &mut self.task_loginuid,
            "task_exit_code" => &mut self.task_exit_code,
            "cred_euid" => &mut self.cred_euid,
            "cred_egid" => &mut self.cred_egid,
            "mm_arg_start" => &mut self.mm_arg_start,
            "mm_arg_end" => &mut self.mm_arg_end,
            "files_fdt" => &mut self.files_fdt,
            "fdtable_max_fds" => &mut self.fdtable_max_fds,
            "fdtable_fd" => &mut self.fdtable_fd,
            "file_private_data" => &mut self.file_private_data,
            "socket_sk" => &mut self.socket_sk,
            "sk_daddr" => &mut self.sk_daddr,
            "sk_rcv_saddr" => &mut self.sk_rcv_saddr,
            "sk_dport" => &mut self.sk_dport,
            "sk_num" => &mut self.sk_num,
            "sk_family" => &mut self.sk_family,
            "sk_v6_daddr" => &mut self.sk_v6_daddr,
            "sk_v6_rcv_saddr" => &mut self.sk_v6_rcv_saddr,
            "sk_protocol" => &mut self.sk_protocol,
            "sk_err" => &mut self.sk_err,
            "sk_state" => &mut self.sk_state,
            "task_fs" => &mut self.task_fs,
            "fs_pwd" => &mut self.fs_pwd,
            "fs_root" => &mut self.fs_root,
            "file_f_path" => &mut self.file_f_path,
            "file_f_inode" => &mut self.file_f_inode,
            "file_f_mode" => &mut self.file_f_mode,
            "file_f_flags" => &mut self.file_f_flags,
            "path_mnt" => &mut self.path_mnt,
            "path_dentry" => &mut self.path_dentry,
            "dentry_d_parent" => &mut self.dentry_d_parent,
            "dentry_d_name" => &mut self.dentry_d_name,
            "dentry_d_inode" => &mut self.dentry_d_inode,
            "dentry_d_sb" => &mut self.dentry_d_sb,
            "qstr_name" => &mut self.qstr_name,
            "inode_i_ino" => &mut self.inode_i_ino,
            "inode_i_mode" => &mut self.inode_i_mode,
            "inode_i_nlink" => &mut self.inode_i_nlink,
            "mm_exe_file" => &mut self.mm_exe_file,
            "inode_i_sb" => &mut self.inode_i_sb,
            "sb_s_dev" => &mut self.sb_s_dev,
            "vfsmount_mnt_root" => &mut self.vfsmount_mnt_root,
            "mount_mnt" => &mut self.mount_mnt,
            "mount_mnt_parent" => &mut self.mount_mnt_parent,
            "mount_mnt_mountpoint" => &mut self.mount_mnt_mountpoint,
            "io_kiocb_opcode" => &mut self.io_kiocb_opcode,
            "regs_arg0" => &mut self.regs_arg0,
            "regs_arg1" => &mut self.regs_arg1,
            "regs_arg2" => &mut self.regs_arg2,
            "regs_arg3" => &mut self.regs_arg3,
            "regs_arg4" => &mut self.regs_arg4,
            "regs_arg5" => &mut self.regs_arg5,
            "regs_nr" => &mut self.regs_nr,
            "regs_compat_arg0" => &mut self.regs_compat_arg0,
            "regs_compat_arg1" => &mut self.regs_compat_arg1,
            "regs_compat_arg2" => &mut self.regs_compat_arg2,
            "regs_compat_arg3" => &mut self.regs_compat_arg3,
            "regs_compat_arg4" => &mut self.regs_compat_arg4,
            "regs_compat_arg5" => &mut self.regs_compat_arg5,
            "task_thread_info" => &mut self.task_thread_info,
            "thread_info_status" => &mut self.thread_info_status,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;
    use std::string::String;

    /// `__NR_<name>` in a C library header, if defined there.
    fn header_nr(h: &str, name: &str) -> Option<u32> {
        let want = String::from("__NR_") + name;
        h.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("#define") && w.next() == Some(want.as_str()))
                .then(|| w.next().and_then(|v| v.parse::<u32>().ok()))
                .flatten()
        })
    }

    fn header(arch: &str) -> Option<String> {
        let h = std::fs::read_to_string(std::format!(
            "/usr/include/x86_64-linux-gnu/asm/unistd_{arch}.h"
        ));
        if h.is_err() {
            std::eprintln!("skipping: no asm/unistd_{arch}.h");
        }
        h.ok()
    }

    /// The numbers are the C library's (`__NR_*` in `asm/unistd_64.h`, when installed); a name the
    /// header predates (fchmodat2 on older headers) is skipped.
    #[test]
    fn x86_64_numbers_match_the_kernel_headers() {
        let Some(h) = header("64") else { return };
        let mut checked = 0;
        for (name, nr) in X86_64_SYSCALL_NR {
            let c = if *name == "umount" { "umount2" } else { name };
            if let Some(f) = header_nr(&h, c) {
                assert_eq!(f, *nr, "{name}");
                checked += 1;
            }
        }
        assert!(
            checked + 1 >= X86_64_SYSCALL_NR.len(),
            "only {checked} numbers found"
        );
    }

    /// Every 32-bit number is the header's number of the syscall or of one of its variants.
    #[test]
    fn ia32_numbers_match_the_kernel_headers() {
        let Some(h) = header("32") else { return };
        for (name, nrs) in X86_IA32_SYSCALL_NR {
            assert!(x86_64_syscall_nr(name).is_some(), "{name} is not hooked");
            for nr in *nrs {
                assert!(*nr < SYSCALL_SLOTS);
                let alias = match *name {
                    "umount" => "umount2",
                    "connect" => "socketcall",
                    other => other,
                };
                let variants = [
                    String::from(*name),
                    String::from(*name) + "32",
                    String::from(*name) + "64",
                    String::from(alias),
                ];
                let ok = variants.iter().any(|v| header_nr(&h, v) == Some(*nr))
                    || (*name == "fchmodat2" && header_nr(&h, name).is_none());
                assert!(ok, "{name}: {nr}");
            }
        }
    }

    #[test]
    fn every_offset_source_has_a_slot_and_every_slot_a_source() {
        let mut o = KernelOffsets::default();
        for (field, ..) in KERNEL_OFFSET_SOURCES {
            assert!(o.slot(field).is_some(), "{field}");
        }
        // valid + one u32 per source row.
        assert_eq!(
            core::mem::size_of::<KernelOffsets>(),
            4 * (1 + KERNEL_OFFSET_SOURCES.len())
        );
    }

    #[test]
    fn syscall_ops_are_unique_and_kinds_known() {
        for (i, a) in SYSCALLS.iter().enumerate() {
            assert!(crate::EventKind::from_wire(a.kind).is_some(), "{}", a.name);
            assert_eq!(syscall_by_op(a.op).map(|s| s.name), Some(a.name));
            for b in &SYSCALLS[i + 1..] {
                assert_ne!(a.op, b.op);
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(sc::OPENAT.arg("filename"), 24);
        for a in SYSCALLS {
            let nr =
                x86_64_syscall_nr(a.name).unwrap_or_else(|| panic!("{} has no number", a.name));
            assert!(nr < SYSCALL_SLOTS, "{}", a.name);
        }
        assert_eq!(tp::INET_SOCK_SET_STATE.field("daddr_v6"), 56);
    }
}
