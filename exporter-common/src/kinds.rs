//! The kind registry: the one table every event kind comes from, with the syscalls that feed them.
//!
//! Each row gives the stable wire id, the `EventKind` variant, the label value (metric `kind` label, log
//! `tripline.event.kind`, policy `kind:`), the OpenTelemetry event name, the family module that owns it on
//! both sides (`exporter-ebpf/src/<family>.rs`, `exporter/src/families/<family>.rs`) and a one-line
//! description for the generated docs. Wire ids are grouped by domain (1.. process, 16.. network, 32.. file,
//! 48.. privilege, 64.. kernel integrity) and never reused.

/// The family (vertical slice) an event kind belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Process,
    Net,
    File,
    Privilege,
    Tamper,
    IoUring,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::Process,
        Family::Net,
        Family::File,
        Family::Privilege,
        Family::Tamper,
        Family::IoUring,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Family::Process => "process",
            Family::Net => "net",
            Family::File => "file",
            Family::Privilege => "privilege",
            Family::Tamper => "tamper",
            Family::IoUring => "io_uring",
        }
    }
}

macro_rules! kinds {
    ($( $konst:ident = $id:literal => $variant:ident, $name:literal, $event:literal, $family:ident, $doc:literal; )*) => {
        /// Wire ids of every event kind (`Header::kind`).
        pub mod kind {
            $( #[doc = $doc] pub const $konst: u16 = $id; )*
            /// One past the largest kind number: sizes the per-kind counter arrays.
            pub const MAX: u32 = 96;
        }

        /// Every kind of event. Closed set: adding a kind is a row in `kinds!`, so the `kind` label stays
        /// bounded.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum EventKind {
            $( #[doc = $doc] $variant = $id, )*
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[ $( EventKind::$variant, )* ];

            /// The wire id.
            pub const fn wire(self) -> u16 {
                self as u16
            }

            /// The label value: metric `kind` label, `tripline.event.kind`, policy `kind:`.
            pub const fn as_str(self) -> &'static str {
                match self { $( EventKind::$variant => $name, )* }
            }

            /// OpenTelemetry event name, `tripline.<domain>.<action>`.
            pub const fn event_name(self) -> &'static str {
                match self { $( EventKind::$variant => $event, )* }
            }

            pub const fn family(self) -> Family {
                match self { $( EventKind::$variant => Family::$family, )* }
            }

            pub const fn description(self) -> &'static str {
                match self { $( EventKind::$variant => $doc, )* }
            }

            pub const fn from_wire(id: u16) -> Option<EventKind> {
                match id { $( $id => Some(EventKind::$variant), )* _ => None }
            }

            pub fn parse(s: &str) -> Option<EventKind> {
                match s { $( $name => Some(EventKind::$variant), )* _ => None }
            }
        }
    };
}

kinds! {
    EXEC = 1 => Exec, "exec", "tripline.process.exec", Process, "A successful execve/execveat: the new executable and argv.";
    FORK = 2 => Fork, "fork", "tripline.process.fork", Process, "A new process (not a thread); the header describes the parent.";
    EXIT = 3 => Exit, "exit", "tripline.process.exit", Process, "A process (thread group) exited, with its wait status.";
    CONNECT = 16 => Connect, "connect", "tripline.network.connect", Net, "An outbound TCP connect with its kernel-resolved addresses and result.";
    ACCEPT = 17 => Accept, "accept", "tripline.network.accept", Net, "An accepted inbound TCP connection.";
    LISTEN = 18 => Listen, "listen", "tripline.network.listen", Net, "A TCP socket started listening.";
    FILE_WRITE = 32 => FileWrite, "file_write", "tripline.file.write", File, "A watched file opened for writing, created or truncated.";
    FILE_UNLINK = 33 => FileUnlink, "file_unlink", "tripline.file.unlink", File, "A watched file deleted.";
    FILE_RENAME = 34 => FileRename, "file_rename", "tripline.file.rename", File, "A watched file renamed (either name watched).";
    FILE_CHMOD = 35 => FileChmod, "file_chmod", "tripline.file.chmod", File, "The mode of a watched file changed.";
    FILE_CHOWN = 36 => FileChown, "file_chown", "tripline.file.chown", File, "The owner or group of a watched file changed.";
    FILE_LINK = 37 => FileLink, "file_link", "tripline.file.link", File, "A hard or symbolic link created to or under a watched path.";
    FILE_XATTR = 38 => FileXattr, "file_xattr", "tripline.file.xattr", File, "An extended attribute set or removed on a watched file, or a `security.capability` (file capability) set anywhere.";
    SENSITIVE_READ = 39 => SensitiveRead, "sensitive_read", "tripline.file.sensitive_read", File, "A credential store or kernel memory/keyring interface opened for reading (matched by inode in the kernel).";
    MODULE_LOAD = 40 => ModuleLoad, "module_load", "tripline.kernel.module_load", File, "A kernel module load attempt (init_module, finit_module): the module file of finit_module resolved in the kernel, the parameters and the result. Hooked by syscall number, so it is reported even where the kernel has no module support (the call then fails with ENOSYS).";
    PRIV_CHANGE = 48 => PrivChange, "priv_change", "tripline.privilege.change", Privilege, "A setuid-family call: the requested ids and the result.";
    PTRACE = 64 => Ptrace, "ptrace", "tripline.kernel.ptrace", Tamper, "ptrace attach, seize or poke of another process.";
    BPF_LOAD = 65 => BpfLoad, "bpf_load", "tripline.kernel.bpf_load", Tamper, "A BPF program load by a process other than tripline.";
    SIGNAL_SELF = 66 => SignalSelf, "signal_tripline", "tripline.kernel.signal_tripline", Tamper, "A signal sent to tripline itself.";
    MEMFD_CREATE = 67 => MemfdCreate, "memfd_create", "tripline.process.memfd_create", Tamper, "An anonymous memory file created (fileless execution staging).";
    MOUNT = 68 => Mount, "mount", "tripline.kernel.mount", Tamper, "A filesystem mounted.";
    UMOUNT = 69 => Umount, "umount", "tripline.kernel.umount", Tamper, "A filesystem unmounted.";
    STDIO_SOCKET = 70 => StdioSocket, "stdio_socket", "tripline.process.stdio_socket", Tamper, "A network socket duplicated onto stdin, stdout or stderr (dup, dup2, dup3, fcntl F_DUPFD): how a shell is wired to a connection without executing a new program.";
    IO_URING_SETUP = 80 => IoUringSetup, "io_uring_setup", "tripline.process.io_uring_setup", IoUring, "A process created an io_uring instance (io_uring:io_uring_create).";
    IO_URING_OP = 81 => IoUringOp, "io_uring_op", "tripline.process.io_uring_op", IoUring, "The first submission of one io_uring opcode by a process (once per process and opcode).";
}

// Hooked syscalls: which kind each feeds, its operation id, and the `sys_enter_*` fields its probe reads
// (offsets checked against tracefs before attach). A new syscall-based kind adds its row here too.
macro_rules! syscalls {
    ($( $konst:ident = $name:literal, $kind:ident, $op:literal, [$( $field:literal @ $off:literal ),*]; )*) => {
        /// Every syscall hooked by a `sys_enter_*`/`sys_exit_*` probe pair.
        pub mod sc {
            use super::kind;
            use crate::abi::Syscall;
            $( pub const $konst: Syscall = Syscall {
                name: $name,
                kind: kind::$kind,
                op: $op,
                args: &[$( ($field, $off) ),*],
            }; )*
        }

        /// Operation ids (`SysEvent::op`).
        pub mod sysop {
            $( pub const $konst: u32 = $op; )*
        }

        pub const SYSCALLS: &[crate::abi::Syscall] = &[ $( sc::$konst, )* ];
    };
}

syscalls! {
    // File integrity (file family).
    OPENAT = "openat", FILE_WRITE, 32, ["dfd" @ 16, "filename" @ 24, "flags" @ 32, "mode" @ 40];
    OPEN = "open", FILE_WRITE, 33, ["filename" @ 16, "flags" @ 24, "mode" @ 32];
    CREAT = "creat", FILE_WRITE, 34, ["pathname" @ 16, "mode" @ 24];
    UNLINKAT = "unlinkat", FILE_UNLINK, 35, ["dfd" @ 16, "pathname" @ 24, "flag" @ 32];
    UNLINK = "unlink", FILE_UNLINK, 36, ["pathname" @ 16];
    RENAMEAT2 = "renameat2", FILE_RENAME, 37, ["olddfd" @ 16, "oldname" @ 24, "newname" @ 40, "flags" @ 48];
    RENAMEAT = "renameat", FILE_RENAME, 38, ["olddfd" @ 16, "oldname" @ 24, "newname" @ 40];
    RENAME = "rename", FILE_RENAME, 39, ["oldname" @ 16, "newname" @ 24];
    FCHMODAT = "fchmodat", FILE_CHMOD, 40, ["dfd" @ 16, "filename" @ 24, "mode" @ 32];
    CHMOD = "chmod", FILE_CHMOD, 41, ["filename" @ 16, "mode" @ 24];
    FCHOWNAT = "fchownat", FILE_CHOWN, 42, ["dfd" @ 16, "filename" @ 24, "user" @ 32, "group" @ 40, "flag" @ 48];
    CHOWN = "chown", FILE_CHOWN, 43, ["filename" @ 16, "user" @ 24, "group" @ 32];
    LCHOWN = "lchown", FILE_CHOWN, 44, ["filename" @ 16, "user" @ 24, "group" @ 32];
    LINKAT = "linkat", FILE_LINK, 45, ["olddfd" @ 16, "oldname" @ 24, "newname" @ 40, "flags" @ 48];
    LINK = "link", FILE_LINK, 46, ["oldname" @ 16, "newname" @ 24];
    SYMLINKAT = "symlinkat", FILE_LINK, 47, ["oldname" @ 16, "newdfd" @ 24, "newname" @ 32];
    SYMLINK = "symlink", FILE_LINK, 48, ["oldname" @ 16, "newname" @ 24];
    OPENAT2 = "openat2", FILE_WRITE, 49, ["dfd" @ 16, "filename" @ 24, "how" @ 32];
    OPEN_BY_HANDLE_AT = "open_by_handle_at", FILE_WRITE, 50, ["mountdirfd" @ 16, "handle" @ 24, "flags" @ 32];
    TRUNCATE = "truncate", FILE_WRITE, 51, ["path" @ 16, "length" @ 24];
    FTRUNCATE = "ftruncate", FILE_WRITE, 52, ["fd" @ 16, "length" @ 24];
    FCHMOD = "fchmod", FILE_CHMOD, 53, ["fd" @ 16, "mode" @ 24];
    FCHMODAT2 = "fchmodat2", FILE_CHMOD, 54, ["dfd" @ 16, "filename" @ 24, "mode" @ 32, "flags" @ 40];
    FCHOWN = "fchown", FILE_CHOWN, 55, ["fd" @ 16, "user" @ 24, "group" @ 32];
    SETXATTR = "setxattr", FILE_XATTR, 56, ["pathname" @ 16, "name" @ 24, "value" @ 32, "size" @ 40, "flags" @ 48];
    LSETXATTR = "lsetxattr", FILE_XATTR, 57, ["pathname" @ 16, "name" @ 24, "value" @ 32, "size" @ 40, "flags" @ 48];
    FSETXATTR = "fsetxattr", FILE_XATTR, 58, ["fd" @ 16, "name" @ 24, "value" @ 32, "size" @ 40, "flags" @ 48];
    REMOVEXATTR = "removexattr", FILE_XATTR, 59, ["pathname" @ 16, "name" @ 24];
    LREMOVEXATTR = "lremovexattr", FILE_XATTR, 60, ["pathname" @ 16, "name" @ 24];
    FREMOVEXATTR = "fremovexattr", FILE_XATTR, 61, ["fd" @ 16, "name" @ 24];
    // Kernel module loads (file family: finit_module names a file).
    INIT_MODULE = "init_module", MODULE_LOAD, 62, ["umod" @ 16, "len" @ 24, "uargs" @ 32];
    FINIT_MODULE = "finit_module", MODULE_LOAD, 63, ["fd" @ 16, "uargs" @ 24, "flags" @ 32];
    // Privilege (privilege family).
    SETUID = "setuid", PRIV_CHANGE, 1, ["uid" @ 16];
    SETGID = "setgid", PRIV_CHANGE, 2, ["gid" @ 16];
    SETREUID = "setreuid", PRIV_CHANGE, 3, ["ruid" @ 16, "euid" @ 24];
    SETREGID = "setregid", PRIV_CHANGE, 4, ["rgid" @ 16, "egid" @ 24];
    SETRESUID = "setresuid", PRIV_CHANGE, 5, ["ruid" @ 16, "euid" @ 24, "suid" @ 32];
    SETRESGID = "setresgid", PRIV_CHANGE, 6, ["rgid" @ 16, "egid" @ 24, "sgid" @ 32];
    // Kernel tampering (tamper family).
    PTRACE = "ptrace", PTRACE, 10, ["request" @ 16, "pid" @ 24];
    BPF = "bpf", BPF_LOAD, 11, ["cmd" @ 16];
    KILL = "kill", SIGNAL_SELF, 12, ["pid" @ 16, "sig" @ 24];
    TKILL = "tkill", SIGNAL_SELF, 13, ["pid" @ 16, "sig" @ 24];
    TGKILL = "tgkill", SIGNAL_SELF, 14, ["tgid" @ 16, "pid" @ 24, "sig" @ 32];
    MEMFD_CREATE = "memfd_create", MEMFD_CREATE, 15, ["uname" @ 16, "flags" @ 24];
    MOUNT = "mount", MOUNT, 16, ["dev_name" @ 16, "dir_name" @ 24, "type" @ 32, "flags" @ 40];
    UMOUNT = "umount", UMOUNT, 17, ["name" @ 16, "flags" @ 24];
    DUP = "dup", STDIO_SOCKET, 18, ["fildes" @ 16];
    DUP2 = "dup2", STDIO_SOCKET, 19, ["oldfd" @ 16, "newfd" @ 24];
    DUP3 = "dup3", STDIO_SOCKET, 20, ["oldfd" @ 16, "newfd" @ 24, "flags" @ 32];
    FCNTL = "fcntl", STDIO_SOCKET, 21, ["fd" @ 16, "cmd" @ 24, "arg" @ 32];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_in_all_and_round_trips() {
        // `ALL` is generated from the same rows as the enum; this guards the generated functions.
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_wire(k.wire()), Some(*k));
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
            assert!((k.wire() as u32) < kind::MAX);
            assert!(k.event_name().starts_with("tripline."));
            assert!(Family::ALL.contains(&k.family()));
        }
        for (i, a) in EventKind::ALL.iter().enumerate() {
            for b in &EventKind::ALL[i + 1..] {
                assert_ne!(a.wire(), b.wire(), "wire ids are unique");
                assert_ne!(a.as_str(), b.as_str(), "names are unique");
            }
        }
    }
}
