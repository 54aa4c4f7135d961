//! The syscall dispatcher: one program on the raw `sys_enter` tracepoint and one on `sys_exit`, each
//! tail-calling the hooked syscall's program from a program array indexed by syscall number
//! (`exporter-ebpf/src/common.rs`).
//!
//! The exit side is the BTF tracepoint `sys_exit_dispatch_btf` where the kernel loads it: `sys_exit`'s
//! arguments carry no syscall number, and there `regs` is typed, so `regs->orig_ax` is a plain load (on
//! the raw tracepoint it is a `bpf_probe_read_kernel` call on every syscall of the host). Its slots hold
//! the `btf_exit_X` twins of the `raw_exit_X` programs, in their own array: a tail call stays within one
//! program type and hook. Where it does not load, or with `raw_dispatch`, the raw exit runs instead.
//!
//! 32-bit calls (`int 0x80`, 32-bit programs) have their own numbers and argument registers: the
//! dispatcher sends them to the same programs through slots `SYSCALL_SLOTS + number`, and the programs
//! read the 32-bit registers (`tripline_common::X86_IA32_SYSCALL_NR`). The `syscalls:` tracepoints never
//! fire for them, so only the dispatcher sees them.
//!
//! Why: a `syscalls:sys_*` tracepoint is a perf event, and closing one waits for RCU grace periods under
//! the kernel's `event_mutex` (~33 ms each on 6.18): 100 syscall tracepoints made every clean stop take
//! ~3.6 s. The two links (raw and BTF tracepoints, no perf event) detach at once. The price is one
//! program run per syscall on the host, hooked or not, which the overhead benchmark measures
//! (docs/performance.md); `sensor.syscall_hooks: tracepoints` selects the per-syscall tracepoints
//! instead, and every slot falls back to its tracepoint where the dispatcher cannot attach (no x86-64
//! register offsets in BTF, raw tracepoints refused).
use aya::maps::{Map, ProgramArray};
use aya::programs::RawTracePoint;
use aya::{Btf, Ebpf};
use tripline_common::KernelOffsets;

use super::{Hook, Link, SyscallHooks};
use crate::tamper::{Reason, Tamper};

const ENTER_MAP: &str = "SYS_ENTER_PROGS";
const EXIT_MAP: &str = "SYS_EXIT_PROGS";
const EXIT_MAP_BTF: &str = "SYS_EXIT_PROGS_BTF";

/// A filled slot: which array, which syscall number, which program (by kernel id).
#[derive(Debug, Clone)]
pub struct Slot {
    map: &'static str,
    nr: u32,
    program: &'static str,
    prog_id: u32,
}

pub struct Dispatcher {
    /// The two links, or why the dispatcher is unavailable (`None` inside: switched off).
    state: Result<Vec<Link>, Option<String>>,
    /// The exit side is the BTF tracepoint (`sys_exit_dispatch_btf`, which reads the syscall number
    /// with a plain load), not the raw one (a helper call per syscall): its slots hold the `btf_exit_X`
    /// programs.
    exit_btf: bool,
    slots: Vec<Slot>,
}

impl Dispatcher {
    /// Attaches `sys_enter_dispatch` and an exit dispatcher (`sys_exit_dispatch_btf` where BTF
    /// tracepoints load, else `sys_exit_dispatch`) unless switched off or impossible here.
    pub fn start(
        ebpf: &mut Ebpf,
        mode: SyscallHooks,
        offsets: &KernelOffsets,
        btf: Option<&Btf>,
    ) -> Dispatcher {
        let state = match mode {
            SyscallHooks::Tracepoints => Err(None),
            SyscallHooks::Dispatch | SyscallHooks::RawDispatch => {
                let btf = btf.filter(|_| mode == SyscallHooks::Dispatch);
                attach(ebpf, offsets, btf).map_err(|e| {
                tracing::warn!(error = %format!("{e:#}"), "raw syscall dispatcher unavailable: using one syscalls: tracepoint per hooked syscall");
                    Some(format!("{e:#}"))
                })
            }
        };
        let exit_btf = matches!(&state, Ok((_, true)));
        Dispatcher {
            state: state.map(|(links, _)| links),
            exit_btf,
            slots: Vec::new(),
        }
    }

    /// How `hook` is named in the attach report: an exit slot behind the BTF exit dispatcher is
    /// `tp_btf/sys_exit/<syscall>`.
    pub fn label(&self, hook: Hook) -> String {
        match hook {
            Hook::Dispatch {
                syscall,
                exit: true,
            } if self.exit_btf => format!("tp_btf/sys_exit/{syscall}"),
            _ => hook.to_string(),
        }
    }

    /// Switched off by configuration: dispatcher rows are skipped, not failed.
    pub fn is_off(&self) -> bool {
        matches!(self.state, Err(None))
    }

    /// Loads `program` and puts it in the entry or exit array at `syscall`'s 64-bit number and at each of
    /// its 32-bit numbers (`SYSCALL_SLOTS` + number). Behind the BTF exit dispatcher an exit slot takes
    /// the program's `btf_exit_X` twin.
    pub fn fill(
        &mut self,
        ebpf: &mut Ebpf,
        btf: Option<&Btf>,
        program: &'static str,
        syscall: &'static str,
        exit: bool,
    ) -> anyhow::Result<()> {
        if let Err(why) = &self.state {
            anyhow::bail!(
                "dispatcher unavailable: {}",
                why.as_deref().unwrap_or("switched off")
            );
        }
        // Reached only once `attach` succeeded, which checked the architecture.
        let nr = tripline_common::x86_64_syscall_nr(syscall)
            .ok_or_else(|| anyhow::anyhow!("no syscall number for {syscall}"))?;
        let compat = tripline_common::x86_ia32_syscall_nrs(syscall)
            .iter()
            .map(|n| tripline_common::SYSCALL_SLOTS + n);
        let (prog_id, fd, name) = if exit && self.exit_btf {
            let twin = program.replacen("raw_exit_", "btf_exit_", 1);
            let btf = btf.ok_or_else(|| anyhow::anyhow!("no kernel BTF"))?;
            let p = super::load_btf_tracepoint(ebpf, &twin, "sys_exit", btf)?;
            (p.info()?.id(), p.fd()?.try_clone()?, EXIT_MAP_BTF)
        } else {
            let p = load_raw(ebpf, program)?;
            let map = if exit { EXIT_MAP } else { ENTER_MAP };
            (p.info()?.id(), p.fd()?.try_clone()?, map)
        };
        let map = ebpf
            .map_mut(name)
            .ok_or_else(|| anyhow::anyhow!("map {name} missing from the object"))?;
        let mut array = ProgramArray::try_from(map)?;
        for slot in std::iter::once(nr).chain(compat) {
            array.set(slot, &fd, 0)?;
            self.slots.push(Slot {
                map: name,
                nr: slot,
                program,
                prog_id,
            });
        }
        Ok(())
    }

    /// Hands the dispatcher's links to the sensor when a slot was filled (else detaches them: nothing to
    /// dispatch to) and returns the slots for integrity checks.
    pub fn finish(self, links: &mut Vec<Link>) -> Vec<Slot> {
        if let Ok(own) = self.state {
            if !self.slots.is_empty() {
                links.extend(own);
            }
        }
        self.slots
    }
}

/// The `ProbeConfig::hooked_enter` and `hooked_exit` bitmaps in `config`: every slot a dispatcher row
/// may fill (a row that then fails only costs a failed tail call), but not the entries of syscalls whose
/// exit reads the arguments itself (`Syscall::exit_reads_args`). Empty when the dispatcher is off.
pub fn hook_slots(mode: SyscallHooks, config: &mut tripline_common::ProbeConfig) {
    if !mode.dispatches() || !cfg!(target_arch = "x86_64") {
        return;
    }
    for (name, nr) in tripline_common::X86_64_SYSCALL_NR {
        let entry = !tripline_common::SYSCALLS
            .iter()
            .any(|s| s.name == *name && s.exit_reads_args());
        let compat = tripline_common::x86_ia32_syscall_nrs(name)
            .iter()
            .map(|n| tripline_common::SYSCALL_SLOTS + n);
        for slot in std::iter::once(*nr).chain(compat) {
            config.hook_slot(slot, true);
            if entry {
                config.hook_slot(slot, false);
            }
        }
    }
}

/// The dispatcher's links, and whether the exit side is the BTF tracepoint.
fn attach(
    ebpf: &mut Ebpf,
    offsets: &KernelOffsets,
    btf: Option<&Btf>,
) -> anyhow::Result<(Vec<Link>, bool)> {
    if !cfg!(target_arch = "x86_64") {
        anyhow::bail!("the raw syscall dispatcher supports x86-64 only");
    }
    if !offsets.have_syscall_regs() {
        anyhow::bail!("kernel BTF lacks the pt_regs members the dispatcher reads");
    }
    let mut links = vec![attach_raw(ebpf, "sys_enter_dispatch", "sys_enter")?];
    match btf.map(|btf| attach_exit_btf(ebpf, btf)) {
        Some(Ok(link)) => {
            links.push(link);
            tracing::info!(
                "syscall exit dispatcher: BTF tracepoint (syscall number read in place)"
            );
            Ok((links, true))
        }
        failed => {
            if let Some(Err(e)) = failed {
                tracing::info!(error = %format!("{e:#}"), "syscall exit dispatcher: BTF tracepoint unavailable, using the raw tracepoint");
            }
            links.push(attach_raw(ebpf, "sys_exit_dispatch", "sys_exit")?);
            Ok((links, false))
        }
    }
}

fn attach_raw(ebpf: &mut Ebpf, program: &str, tracepoint: &str) -> anyhow::Result<Link> {
    let p = load_raw(ebpf, program)?;
    let id = p.attach(tracepoint)?;
    Ok(Link::Raw(p.take_link(id)?))
}

fn attach_exit_btf(ebpf: &mut Ebpf, btf: &Btf) -> anyhow::Result<Link> {
    let p = super::load_btf_tracepoint(ebpf, "sys_exit_dispatch_btf", "sys_exit", btf)?;
    let id = p.attach()?;
    Ok(Link::Btf(p.take_link(id)?))
}

/// `program`, a raw tracepoint program, loaded.
fn load_raw<'e>(ebpf: &'e mut Ebpf, program: &str) -> anyhow::Result<&'e mut RawTracePoint> {
    let p: &mut RawTracePoint = super::program(ebpf, program)?;
    p.load().map_err(|e| super::permission_hint(e.into()))?;
    Ok(p)
}

/// Every filled slot still holds the program put there: an emptied or replaced slot blinds that
/// syscall's probe as surely as a detached link. Reading our own map needs no privilege.
pub fn verify(ebpf: &Ebpf, slots: &[Slot]) -> Vec<Tamper> {
    let mut out = Vec::new();
    for s in slots {
        let name = s.map;
        let Some(Map::ProgramArray(data)) = ebpf.map(name) else {
            continue;
        };
        let now = lookup_prog_id(data.fd(), s.nr);
        if now != Some(s.prog_id) {
            out.push(Tamper {
                reason: Reason::link_missing,
                detail: match now {
                    None => format!(
                        "eBPF program {} (id {}) was removed from the syscall dispatcher's slot {} ({name})",
                        s.program, s.prog_id, s.nr
                    ),
                    Some(other) => format!(
                        "the syscall dispatcher's slot {} ({name}) now runs program id {other} instead of {} (id {})",
                        s.nr, s.program, s.prog_id
                    ),
                },
                gap: None,
            });
        }
    }
    out
}

/// `BPF_MAP_LOOKUP_ELEM` on a program array: the id of the program in slot `index`, if any.
fn lookup_prog_id(fd: &aya::maps::MapFd, index: u32) -> Option<u32> {
    use std::os::fd::{AsFd, AsRawFd};
    #[repr(C)]
    struct Attr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
    let key = index;
    let mut value = 0u32;
    let attr = Attr {
        map_fd: fd.as_fd().as_raw_fd() as u32,
        _pad: 0,
        key: &key as *const u32 as u64,
        value: &mut value as *mut u32 as u64,
        flags: 0,
    };
    // SAFETY: the attribute points at live locals of the sizes the map declares (u32 key, u32 value).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_ELEM,
            &attr as *const Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    (rc == 0).then_some(value)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use tripline_common::{x86_64_syscall_nr, x86_ia32_syscall_nrs, ProbeConfig, SYSCALL_SLOTS};

    fn on(bits: &[u64], slot: u32) -> bool {
        bits[slot as usize / 64] & (1 << (slot % 64)) != 0
    }

    /// Every slot of `name`: its 64-bit number and its 32-bit ones.
    fn slots(name: &str) -> Vec<u32> {
        let compat = x86_ia32_syscall_nrs(name).iter().map(|n| SYSCALL_SLOTS + n);
        std::iter::once(x86_64_syscall_nr(name).unwrap())
            .chain(compat)
            .collect()
    }

    #[test]
    fn entries_are_skipped_only_where_the_exit_reads_the_arguments() {
        let mut c = ProbeConfig::default();
        hook_slots(SyscallHooks::Dispatch, &mut c);
        for name in ["openat", "open", "creat", "open_by_handle_at"] {
            assert!(slots(name).len() > 1 || name == "openat", "{name}");
            for slot in slots(name) {
                assert!(on(&c.hooked_exit, slot), "{name} exit {slot}");
                assert!(!on(&c.hooked_enter, slot), "{name} entry {slot}");
            }
        }
        for name in ["openat2", "connect", "unlinkat", "ftruncate", "setuid"] {
            for slot in slots(name) {
                assert!(on(&c.hooked_exit, slot), "{name} exit {slot}");
                assert!(on(&c.hooked_enter, slot), "{name} entry {slot}");
            }
        }
        let getppid = 110;
        assert!(!on(&c.hooked_enter, getppid) && !on(&c.hooked_exit, getppid));

        let mut off = ProbeConfig::default();
        hook_slots(SyscallHooks::Tracepoints, &mut off);
        assert_eq!(off, ProbeConfig::default());
    }
}
