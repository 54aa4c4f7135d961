//! Privilege transitions: the setuid family, with the requested ids, the caller's identity before the
//! call and the result.
use tripline_common::sc;

use crate::common::{probe_pair, sys_enter, SysArgs, SysSpec, SYS_PENDING};

fn every_call(_op: u32, _args: &mut [u64; 4]) -> bool {
    true
}

#[inline(always)]
fn enter<C: SysArgs>(ctx: &C, s: &SysSpec) -> Result<(), i32> {
    sys_enter(ctx, s, every_call)
}

probe_pair!(enter, SYS_PENDING, setuid, SysSpec::plain(sc::SETUID));
probe_pair!(enter, SYS_PENDING, setgid, SysSpec::plain(sc::SETGID));
probe_pair!(enter, SYS_PENDING, setreuid, SysSpec::plain(sc::SETREUID));
probe_pair!(enter, SYS_PENDING, setregid, SysSpec::plain(sc::SETREGID));
probe_pair!(enter, SYS_PENDING, setresuid, SysSpec::plain(sc::SETRESUID));
probe_pair!(enter, SYS_PENDING, setresgid, SysSpec::plain(sc::SETRESGID));
