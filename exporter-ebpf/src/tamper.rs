//! Kernel tampering and evasion: ptrace attach/poke, BPF program loads, signals aimed at tripline itself,
//! memfd_create, mount and umount.
use aya_ebpf::programs::TracePointContext;
use tripline_common::{sc, sysop};

use crate::common::{probe_pair, self_pid, sys_enter, SysSpec, NO_NAME, SYS_PENDING};

const PTRACE_POKETEXT: u64 = 4;
const PTRACE_POKEDATA: u64 = 5;
const PTRACE_POKEUSER: u64 = 6;
const PTRACE_ATTACH: u64 = 16;
const PTRACE_SEIZE: u64 = 0x4206;
const BPF_PROG_LOAD: u64 = 5;

fn interesting(op: u32, args: &[u64; 4]) -> bool {
    match op {
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

#[inline(always)]
fn enter(ctx: &TracePointContext, s: &SysSpec) -> Result<(), i32> {
    sys_enter(ctx, s, interesting)
}

probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_ptrace,
    sys_exit_ptrace,
    SysSpec::plain(sc::PTRACE)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_bpf,
    sys_exit_bpf,
    SysSpec::plain(sc::BPF)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_kill,
    sys_exit_kill,
    SysSpec::plain(sc::KILL)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_tkill,
    sys_exit_tkill,
    SysSpec::plain(sc::TKILL)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_tgkill,
    sys_exit_tgkill,
    SysSpec::plain(sc::TGKILL)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_memfd_create,
    sys_exit_memfd_create,
    SysSpec {
        sc: sc::MEMFD_CREATE,
        name_arg: 0,
        name2_arg: NO_NAME,
    }
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_mount,
    sys_exit_mount,
    SysSpec {
        sc: sc::MOUNT,
        name_arg: 1,
        name2_arg: 0,
    }
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_umount,
    sys_exit_umount,
    SysSpec {
        sc: sc::UMOUNT,
        name_arg: 0,
        name2_arg: NO_NAME,
    }
);
