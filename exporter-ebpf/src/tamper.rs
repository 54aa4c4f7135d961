//! Kernel tampering and evasion: ptrace attach/poke, BPF program loads, signals aimed at tripline itself,
//! memfd_create, mount and umount; and a network socket duplicated onto stdin/stdout/stderr.
use tripline_common::{sc, sysop};

use crate::common::{probe_pair, self_pid, sys_enter, SysArgs, SysSpec, NO_NAME, SYS_PENDING};
use crate::path::{file_of_fd, is_socket};

const PTRACE_POKETEXT: u64 = 4;
const PTRACE_POKEDATA: u64 = 5;
const PTRACE_POKEUSER: u64 = 6;
const PTRACE_ATTACH: u64 = 16;
const PTRACE_SEIZE: u64 = 0x4206;
const BPF_PROG_LOAD: u64 = 5;

fn interesting(op: u32, args: &mut [u64; 4]) -> bool {
    match op {
        sysop::DUP | sysop::DUP2 | sysop::DUP3 | sysop::FCNTL => stdio_socket_dup(op, args),
        sysop::PTRACE => matches!(
            args[0],
            PTRACE_ATTACH | PTRACE_SEIZE | PTRACE_POKETEXT | PTRACE_POKEDATA | PTRACE_POKEUSER
        ),
        sysop::BPF => args[0] == BPF_PROG_LOAD,
        sysop::KILL | sysop::TKILL | sysop::TGKILL => {
            args[0] as u32 == self_pid() && self_pid() != 0
        }
        _ => true,
    }
}

const F_DUPFD: u64 = 0;
const F_DUPFD_CLOEXEC: u64 = 1030;
/// A duplication that puts a socket on fd 0, 1 or 2. The fd it lands on: dup2/dup3's `newfd`; dup's and
/// F_DUPFD's lowest free fd (at least F_DUPFD's `arg`). Keeps it in `args[3]` and, in `args[2]`, which of
/// fds 0..2 are sockets once the call succeeds (bit n = fd n): stdin and stdout both on sockets is a
/// shell wired to a connection.
#[inline(always)]
fn stdio_socket_dup(op: u32, args: &mut [u64; 4]) -> bool {
    let (old, from) = match op {
        sysop::DUP2 | sysop::DUP3 => {
            if args[1] > 2 || args[0] == args[1] {
                return false;
            }
            (args[0], args[1])
        }
        sysop::FCNTL => {
            if !matches!(args[1], F_DUPFD | F_DUPFD_CLOEXEC) || args[2] > 2 {
                return false;
            }
            (args[0], args[2])
        }
        _ => (args[0], 0),
    };
    if !is_socket(old) {
        return false;
    }
    let mut target = 3u64;
    let mut mask = 0u64;
    for fd in 0..3u64 {
        let open = unsafe { file_of_fd(fd) }.is_ok();
        let lands = if op == sysop::DUP2 || op == sysop::DUP3 {
            fd == from
        } else {
            target == 3 && fd >= from && !open
        };
        if lands {
            target = fd;
            mask |= 1 << fd;
        } else if open && is_socket(fd) {
            mask |= 1 << fd;
        }
    }
    if target > 2 {
        return false;
    }
    args[2] = mask;
    args[3] = target;
    true
}

#[inline(always)]
fn enter<C: SysArgs>(ctx: &C, s: &SysSpec) -> Result<(), i32> {
    sys_enter(ctx, s, interesting)
}

probe_pair!(enter, SYS_PENDING, ptrace, SysSpec::plain(sc::PTRACE));
probe_pair!(enter, SYS_PENDING, bpf, SysSpec::plain(sc::BPF));
probe_pair!(enter, SYS_PENDING, kill, SysSpec::plain(sc::KILL));
probe_pair!(enter, SYS_PENDING, tkill, SysSpec::plain(sc::TKILL));
probe_pair!(enter, SYS_PENDING, tgkill, SysSpec::plain(sc::TGKILL));
probe_pair!(
    enter,
    SYS_PENDING,
    memfd_create,
    SysSpec {
        sc: sc::MEMFD_CREATE,
        name_arg: 0,
        name2_arg: NO_NAME,
    }
);
probe_pair!(
    enter,
    SYS_PENDING,
    mount,
    SysSpec {
        sc: sc::MOUNT,
        name_arg: 1,
        name2_arg: 0,
    }
);
probe_pair!(
    enter,
    SYS_PENDING,
    umount,
    SysSpec {
        sc: sc::UMOUNT,
        name_arg: 0,
        name2_arg: NO_NAME,
    }
);
probe_pair!(enter, SYS_PENDING, dup, SysSpec::plain(sc::DUP));
probe_pair!(enter, SYS_PENDING, dup2, SysSpec::plain(sc::DUP2));
probe_pair!(enter, SYS_PENDING, dup3, SysSpec::plain(sc::DUP3));
probe_pair!(enter, SYS_PENDING, fcntl, SysSpec::plain(sc::FCNTL));
