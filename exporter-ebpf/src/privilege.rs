//! Privilege transitions: the setuid family, with the requested ids, the caller's identity before the
//! call and the result.
use tripline_common::sc;

use crate::common::{probe_pair, sys_enter, SysSpec, SYS_PENDING};

fn every_call(_op: u32, _args: &mut [u64; 4]) -> bool {
    true
}

#[inline(always)]
fn enter(ctx: &aya_ebpf::programs::TracePointContext, s: &SysSpec) -> Result<(), i32> {
    sys_enter(ctx, s, every_call)
}

probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setuid,
    sys_exit_setuid,
    SysSpec::plain(sc::SETUID)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setgid,
    sys_exit_setgid,
    SysSpec::plain(sc::SETGID)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setreuid,
    sys_exit_setreuid,
    SysSpec::plain(sc::SETREUID)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setregid,
    sys_exit_setregid,
    SysSpec::plain(sc::SETREGID)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setresuid,
    sys_exit_setresuid,
    SysSpec::plain(sc::SETRESUID)
);
probe_pair!(
    enter,
    SYS_PENDING,
    sys_enter_setresgid,
    sys_exit_setresgid,
    SysSpec::plain(sc::SETRESGID)
);
