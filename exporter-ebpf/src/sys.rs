//! Privilege transitions and kernel tampering: the setuid family, ptrace attach/poke, BPF program loads,
//! signals aimed at tripline itself, memfd_create, mount and umount.
//!
//! `sys_enter_*` decides whether the call is interesting, records the arguments (and name strings) with
//! the caller's identity before the call, and parks it per thread; `sys_exit_*` adds the result.
use aya_ebpf::{
    helpers::bpf_probe_read_user_str_bytes,
    macros::map,
    maps::{LruHashMap, PerCpuArray},
    programs::TracePointContext,
};
use tripline_common::{kind, sysop, tp_syscalls, SysEvent};

use crate::common::{fill_header, is_self, park, probe_pair, self_pid};

#[map]
static SYS_SCRATCH: PerCpuArray<SysEvent> = PerCpuArray::with_max_entries(1, 0);

#[map]
static SYS_PENDING: LruHashMap<u64, SysEvent> = LruHashMap::with_max_entries(4096, 0);

const PTRACE_POKETEXT: u64 = 4;
const PTRACE_POKEDATA: u64 = 5;
const PTRACE_POKEUSER: u64 = 6;
const PTRACE_ATTACH: u64 = 16;
const PTRACE_SEIZE: u64 = 0x4206;
const BPF_PROG_LOAD: u64 = 5;

/// Which tracepoint fields hold the arguments, and which are user strings.
struct Spec {
    kind: u16,
    op: u32,
    nargs: usize,
    /// Argument index holding a user string for `name` / `name2` (usize::MAX = none).
    name_arg: usize,
    name2_arg: usize,
}

const NO: usize = usize::MAX;

#[inline(always)]
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
fn enter(ctx: &TracePointContext, s: &Spec) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    let mut args = [0u64; 4];
    for (i, a) in args.iter_mut().enumerate() {
        if i < s.nargs {
            *a = unsafe { ctx.read_at::<u64>(tp_syscalls::ARG0 + 8 * i)? };
        }
    }
    if !interesting(s.op, &args) {
        return Ok(());
    }
    let Some(ev) = SYS_SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    unsafe {
        (*ev).op = s.op;
        (*ev).args = args;
        (*ev).result = 0;
        (*ev).name_len = 0;
        (*ev).name2_len = 0;
        if s.name_arg < 4 {
            let p = args[s.name_arg & 3] as *const u8;
            (*ev).name_len = bpf_probe_read_user_str_bytes(p, &mut (*ev).name)
                .map(|b| b.len())
                .unwrap_or(0) as u16;
        }
        if s.name2_arg < 4 {
            let p = args[s.name2_arg & 3] as *const u8;
            (*ev).name2_len = bpf_probe_read_user_str_bytes(p, &mut (*ev).name2)
                .map(|b| b.len())
                .unwrap_or(0) as u16;
        }
        fill_header(
            &raw mut (*ev).header,
            s.kind,
            core::mem::size_of::<SysEvent>(),
        );
        park(&SYS_PENDING, ev);
    }
    Ok(())
}

const fn spec(kind: u16, op: u32, nargs: usize) -> Spec {
    Spec {
        kind,
        op,
        nargs,
        name_arg: NO,
        name2_arg: NO,
    }
}

probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setuid,
    sys_exit_setuid,
    spec(kind::PRIV_CHANGE, sysop::SETUID, 1)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setgid,
    sys_exit_setgid,
    spec(kind::PRIV_CHANGE, sysop::SETGID, 1)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setreuid,
    sys_exit_setreuid,
    spec(kind::PRIV_CHANGE, sysop::SETREUID, 2)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setregid,
    sys_exit_setregid,
    spec(kind::PRIV_CHANGE, sysop::SETREGID, 2)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setresuid,
    sys_exit_setresuid,
    spec(kind::PRIV_CHANGE, sysop::SETRESUID, 3)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setresgid,
    sys_exit_setresgid,
    spec(kind::PRIV_CHANGE, sysop::SETRESGID, 3)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_ptrace,
    sys_exit_ptrace,
    spec(kind::PTRACE, sysop::PTRACE, 2)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_bpf,
    sys_exit_bpf,
    spec(kind::BPF_LOAD, sysop::BPF, 1)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_kill,
    sys_exit_kill,
    spec(kind::SIGNAL_SELF, sysop::KILL, 2)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_tkill,
    sys_exit_tkill,
    spec(kind::SIGNAL_SELF, sysop::TKILL, 2)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_tgkill,
    sys_exit_tgkill,
    spec(kind::SIGNAL_SELF, sysop::TGKILL, 3)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_memfd_create,
    sys_exit_memfd_create,
    Spec {
        kind: kind::MEMFD_CREATE,
        op: sysop::MEMFD_CREATE,
        nargs: 2,
        name_arg: 0,
        name2_arg: NO
    }
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_mount,
    sys_exit_mount,
    Spec {
        kind: kind::MOUNT,
        op: sysop::MOUNT,
        nargs: 4,
        name_arg: 1,
        name2_arg: 0
    }
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_umount,
    sys_exit_umount,
    Spec {
        kind: kind::UMOUNT,
        op: sysop::UMOUNT,
        nargs: 2,
        name_arg: 0,
        name2_arg: NO
    }
);
