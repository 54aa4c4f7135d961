//! Loading and attaching the probes, the ring-buffer reader and scrape-time reads of kernel counters.
//!
//! The attach table lists every hook with its fallback. Each probe loads and attaches on its own, so one
//! refused hook costs that probe only; what attached is logged once and exported as
//! `tripline_probe_attached{probe}`.
pub mod btf;
mod dispatch;
pub mod inodes;
pub mod integrity;
pub mod reader;
pub mod tracefs;

use std::path::Path;

use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::raw_trace_point::RawTracePointLink;
use aya::programs::tp_btf::BtfTracePointLink;
use aya::programs::trace_point::TracePointLink;
use aya::programs::{BtfTracePoint, Program, ProgramError, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use tripline_common::{counter, tp, Family, KernelOffsets, ProbeConfig, Tracepoint, SYSCALLS};

use crate::model::EventKind;
use crate::telemetry::metrics::{
    Bounded, KindLabel, KindLabels, Metrics, ProbeLabels, ResolveLabels, ResolveReason, Stage,
};

/// The compiled probes, embedded at build time by `build.rs`.
static PROBES_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tripline"));

/// How the syscall probes attach (`sensor.syscall_hooks`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    serde::Deserialize,
    PartialEq,
    Eq,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SyscallHooks {
    /// An in-kernel dispatch by syscall number on the raw `sys_enter` tracepoint and on `sys_exit` as a
    /// BTF tracepoint (the raw one where that does not load); falls back to tracepoints where the
    /// dispatcher cannot attach.
    #[default]
    Dispatch,
    /// The dispatcher on the raw tracepoints at both ends, never the BTF one at exit (to compare
    /// their cost, or where the BTF one misbehaves).
    RawDispatch,
    /// One `syscalls:` tracepoint pair per hooked syscall.
    Tracepoints,
}

impl SyscallHooks {
    /// Whether the syscall probes are dispatcher slots.
    pub fn dispatches(self) -> bool {
        self != SyscallHooks::Tracepoints
    }
}

/// How a program attaches.
#[derive(Debug, Clone, Copy)]
pub enum Hook {
    Tracepoint {
        category: &'static str,
        name: &'static str,
    },
    BtfTracepoint {
        name: &'static str,
    },
    /// A slot of the raw `sys_enter`/`sys_exit` dispatcher's program array, at the syscall's number
    /// (`sensor.syscall_hooks: dispatch`).
    Dispatch {
        syscall: &'static str,
        exit: bool,
    },
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hook::Tracepoint { category, name } => write!(f, "tracepoint/{category}/{name}"),
            Hook::BtfTracepoint { name } => write!(f, "tp_btf/{name}"),
            Hook::Dispatch { syscall, exit } => {
                let tp = if *exit { "sys_exit" } else { "sys_enter" };
                write!(f, "raw_tracepoint/{tp}/{syscall}")
            }
        }
    }
}

/// One row of the attach table. Rows with the same `probe` are alternatives, tried in order until one
/// attaches.
pub struct ProbeSpec {
    /// The `probe` label value.
    pub probe: &'static str,
    /// Program name in the object.
    pub program: &'static str,
    pub hook: Hook,
    /// Tracepoint fields the program reads at fixed offsets (the ABI table in `tripline_common`):
    /// checked against tracefs before attach.
    pub format: &'static [(&'static str, usize)],
    /// Needs kernel struct offsets from BTF.
    pub needs_offsets: bool,
    /// Oldest kernel known to provide the hook, for the docs and the log.
    pub min_kernel: &'static str,
}

const fn tracepoint(t: &Tracepoint) -> Hook {
    Hook::Tracepoint {
        category: t.category,
        name: t.name,
    }
}

const fn syscall_tp(name: &'static str) -> Hook {
    Hook::Tracepoint {
        category: "syscalls",
        name,
    }
}

/// A dispatcher-slot row for `syscall`'s entry or exit program; `format` is the `sys_enter_*` argument
/// layout it reads (checked against tracefs when the kernel describes the syscall).
const fn dispatch_row(
    probe: &'static str,
    program: &'static str,
    syscall: &'static str,
    exit: bool,
    format: &'static [(&'static str, usize)],
) -> ProbeSpec {
    ProbeSpec {
        probe,
        program,
        hook: Hook::Dispatch { syscall, exit },
        format,
        needs_offsets: true,
        min_kernel: "4.17",
    }
}

pub const ATTACH_TABLE: &[ProbeSpec] = &[
    ProbeSpec {
        probe: "exec",
        program: "sched_process_exec",
        hook: tracepoint(&tp::SCHED_PROCESS_EXEC),
        format: tp::SCHED_PROCESS_EXEC.fields,
        needs_offsets: false,
        min_kernel: "3.4",
    },
    ProbeSpec {
        probe: "fork",
        program: "sched_process_fork",
        hook: Hook::BtfTracepoint {
            name: "sched_process_fork",
        },
        format: &[],
        needs_offsets: true,
        min_kernel: "5.5",
    },
    ProbeSpec {
        probe: "fork",
        program: "sched_process_fork_tp",
        hook: tracepoint(&tp::SCHED_PROCESS_FORK),
        format: tp::SCHED_PROCESS_FORK.fields,
        needs_offsets: false,
        min_kernel: "3.4",
    },
    ProbeSpec {
        probe: "exit",
        program: "sched_process_exit",
        hook: tracepoint(&tp::SCHED_PROCESS_EXIT),
        format: tp::SCHED_PROCESS_EXIT.fields,
        needs_offsets: false,
        min_kernel: "6.10",
    },
    ProbeSpec {
        probe: "tcp_state",
        program: "inet_sock_set_state",
        hook: tracepoint(&tp::INET_SOCK_SET_STATE),
        format: tp::INET_SOCK_SET_STATE.fields,
        needs_offsets: false,
        min_kernel: "4.16",
    },
    dispatch_row("connect_enter", "raw_enter_connect", "connect", false, &[]),
    ProbeSpec {
        probe: "connect_enter",
        program: "sys_enter_connect",
        hook: syscall_tp("sys_enter_connect"),
        format: &[],
        needs_offsets: false,
        min_kernel: "4.7",
    },
    dispatch_row("connect_exit", "raw_exit_connect", "connect", true, &[]),
    ProbeSpec {
        probe: "connect_exit",
        program: "sys_exit_connect",
        hook: syscall_tp("sys_exit_connect"),
        format: tp::SYS_EXIT.fields,
        needs_offsets: false,
        min_kernel: "4.7",
    },
    dispatch_row("accept", "raw_exit_accept", "accept", true, &[]),
    ProbeSpec {
        probe: "accept",
        program: "sys_exit_accept",
        hook: syscall_tp("sys_exit_accept"),
        format: tp::SYS_EXIT.fields,
        needs_offsets: true,
        min_kernel: "4.7",
    },
    dispatch_row("accept4", "raw_exit_accept4", "accept4", true, &[]),
    ProbeSpec {
        probe: "accept4",
        program: "sys_exit_accept4",
        hook: syscall_tp("sys_exit_accept4"),
        format: tp::SYS_EXIT.fields,
        needs_offsets: true,
        min_kernel: "4.7",
    },
    ProbeSpec {
        probe: "io_uring_create",
        program: "io_uring_create",
        hook: tracepoint(&tp::IO_URING_CREATE),
        format: tp::IO_URING_CREATE.fields,
        needs_offsets: false,
        min_kernel: "5.5",
    },
    ProbeSpec {
        probe: "io_uring_submit",
        program: "io_uring_submit_req",
        hook: tracepoint(&tp::IO_URING_SUBMIT_REQ),
        format: tp::IO_URING_SUBMIT_REQ.fields,
        needs_offsets: false,
        min_kernel: "5.18",
    },
    ProbeSpec {
        probe: "io_uring_file",
        program: "io_uring_file_get",
        hook: tracepoint(&tp::IO_URING_FILE_GET),
        format: tp::IO_URING_FILE_GET.fields,
        needs_offsets: true,
        min_kernel: "5.5",
    },
    ProbeSpec {
        probe: "io_uring_complete",
        program: "io_uring_complete",
        hook: tracepoint(&tp::IO_URING_COMPLETE),
        format: tp::IO_URING_COMPLETE.fields,
        needs_offsets: true,
        min_kernel: "5.5",
    },
];

/// Attach rows for every syscall in the ABI table (`tripline_common::SYSCALLS`): `<syscall>` (entry, reads
/// the arguments; `file_<syscall>` for the file family) and `<label>_exit` (adds the result), each first as
/// a dispatcher slot, then as its `syscalls:` tracepoint. Built once; leaked to get `'static` names.
fn syscall_probes() -> &'static [ProbeSpec] {
    static ROWS: std::sync::OnceLock<Vec<ProbeSpec>> = std::sync::OnceLock::new();
    ROWS.get_or_init(|| {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let mut rows = Vec::new();
        for s in SYSCALLS {
            let (sc, fields) = (s.name, s.args);
            let file = EventKind::from_wire(s.kind).map(EventKind::family) == Some(Family::File);
            let label = if file { "file_" } else { "" };
            let (enter, exit) = (
                leak(format!("{label}{sc}")),
                leak(format!("{label}{sc}_exit")),
            );
            rows.push(dispatch_row(
                enter,
                leak(format!("raw_enter_{sc}")),
                sc,
                false,
                fields,
            ));
            rows.push(ProbeSpec {
                probe: enter,
                program: leak(format!("sys_enter_{sc}")),
                hook: Hook::Tracepoint {
                    category: "syscalls",
                    name: leak(format!("sys_enter_{sc}")),
                },
                format: fields,
                needs_offsets: true,
                min_kernel: "4.7",
            });
            rows.push(dispatch_row(
                exit,
                leak(format!("raw_exit_{sc}")),
                sc,
                true,
                &[],
            ));
            rows.push(ProbeSpec {
                probe: exit,
                program: leak(format!("sys_exit_{sc}")),
                hook: Hook::Tracepoint {
                    category: "syscalls",
                    name: leak(format!("sys_exit_{sc}")),
                },
                format: tp::SYS_EXIT.fields,
                needs_offsets: false,
                min_kernel: "4.7",
            });
        }
        rows
    })
}

/// What happened to one probe label.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeStatus {
    pub probe: &'static str,
    pub attached: bool,
    /// Every alternative's hook is absent from this kernel (a feature compiled out, e.g. the module
    /// syscalls' tracepoints without module support): reported, not counted as missing.
    pub unavailable: bool,
    /// The hook that attached, or the last one tried.
    pub hook: String,
    /// Why each alternative failed, in order.
    pub errors: Vec<String>,
}

/// Settings for [`Sensor::load`].
pub struct SensorOptions<'a> {
    /// Watched path prefixes for the file probes.
    pub watch: tripline_common::WatchList,
    pub ring_buffer_bytes: u32,
    /// See `tripline_common::ProbeConfig::wakeup_bytes`.
    pub wakeup_bytes: u32,
    pub btf_path: &'a Path,
    pub syscall_hooks: SyscallHooks,
}

/// An attached program; dropping it detaches.
enum Link {
    Tracepoint(#[allow(dead_code)] TracePointLink),
    Btf(#[allow(dead_code)] BtfTracePointLink),
    Raw(#[allow(dead_code)] RawTracePointLink),
}

/// Loaded probes: the ring buffer to read and the counters to sample.
pub struct Sensor {
    /// Declared first: links drop (detach) before the programs and maps they use.
    links: Vec<Link>,
    _ebpf: Ebpf,
    /// The watched/sensitive inode map (`probes::inodes`) and the keys last written to it.
    inodes: Option<aya::maps::HashMap<MapData, tripline_common::InodeKey, u32>>,
    inode_keys: std::collections::HashSet<tripline_common::InodeKey>,
    pub ring: Option<RingBuf<MapData>>,
    counters: PerCpuArray<MapData, u64>,
    pub status: Vec<ProbeStatus>,
    /// Our programs, links and maps as attached, for [`Sensor::verify_integrity`].
    integrity: integrity::Integrity,
    /// Dispatcher slots filled at load, for [`Sensor::verify_integrity`].
    slots: Vec<dispatch::Slot>,
    /// Tamper evidence found while reading counters, taken by [`Sensor::take_tamper`].
    tamper: Vec<crate::tamper::Tamper>,
    /// Per-CPU counter values last read, by counter index: turns absolute kernel counts into
    /// increments, and shows a slot that went down.
    last_cpu: std::collections::HashMap<u32, Vec<u64>>,
}

/// Refuses to start without what the probes need, with a message that says what to do.
pub fn preflight(btf_path: &Path) -> anyhow::Result<()> {
    let has = |c| caps::has_cap(None, caps::CapSet::Effective, c).unwrap_or(false);
    let capable = has(caps::Capability::CAP_BPF) && has(caps::Capability::CAP_PERFMON);
    if !nix::unistd::geteuid().is_root() && !capable {
        anyhow::bail!(
            "tripline must run as root (it loads eBPF programs): re-run with sudo, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN"
        );
    }
    if !btf_path.exists() {
        anyhow::bail!(
            "{} not found: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y is required)",
            btf_path.display()
        );
    }
    Ok(())
}

fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        tracing::warn!(
            "could not raise RLIMIT_MEMLOCK ({}); on kernels >= 5.11 BPF memory is memcg-accounted and this is harmless",
            std::io::Error::last_os_error()
        );
    }
}

impl Sensor {
    // Long on purpose: the load sequence (BTF offsets, globals, object load, maps, attach table) in the order the kernel needs it.
    pub fn load(opts: &SensorOptions<'_>) -> anyhow::Result<Sensor> {
        preflight(opts.btf_path)?;
        raise_memlock();
        let events_dir = tracefs::ensure_mounted().map_err(anyhow::Error::msg)?;

        let offsets = match btf::Resolver::from_file(opts.btf_path).and_then(|r| r.kernel_offsets())
        {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "kernel struct offsets unavailable: fork, accept, argv and credential fields will be missing");
                KernelOffsets::default()
            }
        };
        let mut config = ProbeConfig {
            self_pid: std::process::id(),
            wakeup_bytes: opts.wakeup_bytes,
            ..ProbeConfig::default()
        };
        dispatch::hook_slots(opts.syscall_hooks, &mut config);

        let mut ebpf = EbpfLoader::new()
            .override_global("OFFSETS", &offsets, true)
            .override_global("CONFIG", &config, true)
            .override_global("WATCH", &opts.watch, true)
            .map_max_entries("EVENTS", opts.ring_buffer_bytes)
            .load(PROBES_OBJECT)
            .map_err(|e| permission_hint(anyhow::Error::new(e)))
            .context("loading the eBPF object")?;

        let kernel_btf = Btf::from_sys_fs().ok();
        let mut status: Vec<ProbeStatus> = Vec::new();
        let mut links = Vec::new();
        let mut dispatcher = dispatch::Dispatcher::start(
            &mut ebpf,
            opts.syscall_hooks,
            &offsets,
            kernel_btf.as_ref(),
        );
        for spec in ATTACH_TABLE.iter().chain(syscall_probes()) {
            if let Some(s) = status.iter().find(|s| s.probe == spec.probe) {
                if s.attached {
                    continue; // an earlier alternative attached
                }
            }
            let result = match spec.hook {
                Hook::Dispatch { .. } if dispatcher.is_off() => continue,
                Hook::Dispatch { syscall, exit } => {
                    check_format(spec, &events_dir).and_then(|()| {
                        dispatcher.fill(&mut ebpf, kernel_btf.as_ref(), spec.program, syscall, exit)
                    })
                }
                _ => attach_one(
                    &mut ebpf,
                    spec,
                    &events_dir,
                    offsets.valid != 0,
                    kernel_btf.as_ref(),
                )
                .map(|link| links.push(link)),
            };
            let entry = match status.iter_mut().find(|s| s.probe == spec.probe) {
                Some(s) => s,
                None => {
                    status.push(ProbeStatus {
                        probe: spec.probe,
                        attached: false,
                        unavailable: true,
                        hook: String::new(),
                        errors: Vec::new(),
                    });
                    status.last_mut().expect("just pushed")
                }
            };
            entry.hook = dispatcher.label(spec.hook);
            match result {
                Ok(()) => {
                    entry.attached = true;
                    entry.unavailable = false;
                }
                Err(e) => {
                    entry.unavailable &= e.downcast_ref::<NotOnThisKernel>().is_some();
                    entry.errors.push(format!("{}: {e:#}", entry.hook));
                }
            }
        }
        let slots = dispatcher.finish(&mut links);
        if !status.iter().any(|s| s.attached) {
            let why: Vec<String> = status.iter().flat_map(|s| s.errors.clone()).collect();
            anyhow::bail!("no probe could be attached: {}", why.join("; "));
        }

        let ring = RingBuf::try_from(ebpf.take_map("EVENTS").context("EVENTS map missing")?)
            .context("EVENTS is not a ring buffer")?;
        let counters =
            PerCpuArray::try_from(ebpf.take_map("COUNTERS").context("COUNTERS map missing")?)
                .context("COUNTERS is not a per-CPU array")?;
        let inodes = ebpf
            .take_map("INODES")
            .and_then(|m| aya::maps::HashMap::try_from(m).ok());
        let integrity = integrity::Integrity::capture(&ebpf);
        tracing::info!(
            programs = integrity.programs(),
            "recorded program ids and tags for integrity checks"
        );
        Ok(Sensor {
            links,
            _ebpf: ebpf,
            inodes,
            inode_keys: Default::default(),
            ring: Some(ring),
            counters,
            status,
            integrity,
            slots,
            tamper: Vec::new(),
            last_cpu: std::collections::HashMap::new(),
        })
    }

    /// Replaces the kernel's inode map with `table` (see [`inodes`]); returns the entries written.
    pub fn set_inodes(
        &mut self,
        table: &std::collections::HashMap<tripline_common::InodeKey, u32>,
    ) -> usize {
        let Some(map) = self.inodes.as_mut() else {
            return 0;
        };
        let mut written = 0;
        for (k, v) in table {
            if map.insert(*k, *v, 0).is_ok() {
                written += 1;
            }
        }
        for stale in self.inode_keys.iter().filter(|k| !table.contains_key(*k)) {
            let _ = map.remove(stale);
        }
        self.inode_keys = table.keys().copied().collect();
        written
    }

    /// Adds `table` to the kernel's inode map without removing anything: the refresh runs without
    /// CAP_DAC_READ_SEARCH, so files it can no longer see (other users' keys in 0700 homes) stay as
    /// found at start.
    pub fn add_inodes(
        &mut self,
        table: &std::collections::HashMap<tripline_common::InodeKey, u32>,
    ) {
        let Some(map) = self.inodes.as_mut() else {
            return;
        };
        for (k, v) in table {
            if map.insert(*k, *v, 0).is_ok() {
                self.inode_keys.insert(*k);
            }
        }
    }

    /// Logs what attached and sets `tripline_probe_attached` (not for probes this kernel cannot have).
    pub fn report(&self, metrics: &Metrics) {
        for s in &self.status {
            if s.unavailable {
                tracing::info!(probe = s.probe, errors = %s.errors.join("; "), "probe not available on this kernel");
                continue;
            }
            metrics
                .probe_attached
                .get_or_create(&ProbeLabels {
                    probe: Bounded::from_closed_set(s.probe),
                })
                .set(i64::from(s.attached));
            if s.attached {
                tracing::info!(probe = s.probe, hook = %s.hook, "probe attached");
            } else {
                tracing::warn!(probe = s.probe, errors = %s.errors.join("; "), "probe NOT attached: its events will be missing");
            }
        }
        if self.all_attached() {
            tracing::info!("{}", self.summary());
        } else {
            tracing::warn!("{}", self.summary());
        }
    }

    /// One line for the log: `8/8 probes attached; missing: none` (and what this kernel cannot have).
    pub fn summary(&self) -> String {
        let names = |f: &dyn Fn(&ProbeStatus) -> bool| -> Vec<&str> {
            self.status
                .iter()
                .filter(|s| f(s))
                .map(|s| s.probe)
                .collect()
        };
        let attached = names(&|s| s.attached).len();
        let missing = names(&|s| !s.attached && !s.unavailable);
        let unavailable = names(&|s| s.unavailable);
        let mut line = format!(
            "{attached}/{} probes attached; missing: {}",
            self.status.len() - unavailable.len(),
            if missing.is_empty() {
                "none".to_string()
            } else {
                missing.join(", ")
            }
        );
        if !unavailable.is_empty() {
            line.push_str("; not available on this kernel: ");
            line.push_str(&unavailable.join(", "));
        }
        line
    }

    pub fn all_attached(&self) -> bool {
        self.status.iter().all(|s| s.attached || s.unavailable)
    }

    /// Reads the in-kernel per-CPU counters and moves the matching metrics forward (called at scrape time).
    /// Tamper evidence gathered since the last call (counter decreases).
    pub fn take_tamper(&mut self) -> Vec<crate::tamper::Tamper> {
        std::mem::take(&mut self.tamper)
    }

    /// Checks our programs, links and maps are still loaded, attached and unchanged.
    pub fn verify_integrity(&self) -> Vec<crate::tamper::Tamper> {
        let mut out = self.integrity.verify(&self._ebpf);
        out.extend(dispatch::verify(&self._ebpf, &self.slots));
        out
    }

    // Long on purpose: every kernel counter read once per pass, per CPU slot, as monotonic (a lowered slot
    // is tamper evidence), and moved into its metric.
    pub fn sync_counters(&mut self, metrics: &Metrics) {
        // Each CPU's slot only grows: one that went down was rewritten from userspace. Checked per
        // CPU, so events on other CPUs cannot mask a lowered slot.
        let mut decreased: Vec<(u32, usize, u64, u64)> = Vec::new();
        let last_cpu = &mut self.last_cpu;
        let counters = &self.counters;
        let mut read = |idx: u32| -> u64 {
            let Ok(v) = counters.get(&idx, 0) else {
                return 0;
            };
            let prev = last_cpu.entry(idx).or_default();
            prev.resize(v.len(), 0);
            // The increment since the last read; after a rewrite, what the slot counted since.
            let mut delta = 0u64;
            for (cpu, (now, before)) in v.iter().zip(prev.iter_mut()).enumerate() {
                if *now < *before {
                    decreased.push((idx, cpu, *before, *now));
                    delta += *now;
                } else {
                    delta += *now - *before;
                }
                *before = *now;
            }
            delta
        };
        let mut values = vec![0u64; counter::COUNT as usize];
        for e in EventKind::ALL {
            let k = u32::from(e.wire());
            values[(counter::SEEN + k) as usize] = read(counter::SEEN + k);
            values[(counter::LOST + k) as usize] = read(counter::LOST + k);
        }
        values[counter::READ_ERRORS as usize] = read(counter::READ_ERRORS);
        values[counter::PENDING_FULL as usize] = read(counter::PENDING_FULL);
        values[counter::FILE_FILTERED as usize] = read(counter::FILE_FILTERED);
        for c in [
            counter::RESOLVE_FAILED,
            counter::RESOLVE_TOO_DEEP,
            counter::RESOLVE_TOO_LONG,
            counter::IO_URING_FIXED_FILE,
        ] {
            values[c as usize] = read(c);
        }

        for (idx, cpu, before, now) in decreased {
            self.tamper.push(crate::tamper::Tamper {
                reason: crate::tamper::Reason::counter_decreased,
                detail: format!(
                    "kernel counter {} on CPU {cpu} went down from {before} to {now}: the COUNTERS map was rewritten from userspace (events may have been hidden)",
                    counter_name(idx)
                ),
                gap: None,
            });
        }
        let delta = |i: u32| -> u64 { values[i as usize] };
        let lost = metrics.lost(Stage::kernel);
        for e in EventKind::ALL {
            let k = u32::from(e.wire());
            metrics
                .events
                .get_or_create(&KindLabels {
                    kind: KindLabel(Some(*e)),
                })
                .inc_by(delta(counter::SEEN + k));
            lost.inc_by(delta(counter::LOST + k));
        }
        metrics
            .kernel_read_errors
            .inc_by(delta(counter::READ_ERRORS));
        metrics
            .pending_connect_full
            .inc_by(delta(counter::PENDING_FULL));
        metrics
            .file_events_filtered
            .inc_by(delta(counter::FILE_FILTERED));
        for (c, reason) in [
            (counter::RESOLVE_FAILED, ResolveReason::read_error),
            (counter::RESOLVE_TOO_DEEP, ResolveReason::too_deep),
            (counter::RESOLVE_TOO_LONG, ResolveReason::too_long),
        ] {
            metrics
                .file_path_resolution_failures
                .get_or_create(&ResolveLabels { reason })
                .inc_by(delta(c));
        }
        metrics
            .io_uring_fixed_files
            .inc_by(delta(counter::IO_URING_FIXED_FILE));
    }
}

/// The sensor's scrape-time metrics: reads the in-kernel counters, then encodes the families they feed
/// (`Metrics::encode_kernel_fed`).
pub struct SensorCollector {
    sensor: std::sync::Arc<std::sync::Mutex<Sensor>>,
    metrics: Metrics,
}

impl SensorCollector {
    pub fn new(sensor: std::sync::Arc<std::sync::Mutex<Sensor>>, metrics: Metrics) -> Self {
        SensorCollector { sensor, metrics }
    }
}

impl std::fmt::Debug for SensorCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SensorCollector")
    }
}

impl Collector for SensorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Ok(mut sensor) = self.sensor.lock() {
            sensor.sync_counters(&self.metrics);
        }
        self.metrics.encode_kernel_fed(&mut encoder)
    }
}

impl Drop for Sensor {
    /// Detaches every probe, on a few threads at once. Each perf-event tracepoint detach waits for RCU
    /// grace periods in the kernel; on several threads the waits partly overlap (measured 2026-12-06,
    /// `tests/bench/shutdown.sh`, 3 runs: dispatch 326–363 ms threaded against 475–552 ms one after the
    /// other; 100 syscall tracepoints 4.7–5.2 s against 7.7–8.1 s). With the syscall dispatcher only
    /// the 8 non-syscall tracepoints pay it (docs/detection.md, life cycle).
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.links);
        let per_thread = links.len().div_ceil(16).max(1);
        let mut chunks: Vec<Vec<Link>> = Vec::new();
        let mut it = links.into_iter().peekable();
        while it.peek().is_some() {
            chunks.push(it.by_ref().take(per_thread).collect());
        }
        let t0 = std::time::Instant::now();
        std::thread::scope(|s| {
            for chunk in chunks {
                s.spawn(move || drop(chunk));
            }
        });
        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "probes detached");
    }
}

impl std::fmt::Debug for Sensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensor")
            .field("status", &self.status)
            .finish()
    }
}

fn attach_one(
    ebpf: &mut Ebpf,
    spec: &ProbeSpec,
    events_dir: &Path,
    have_offsets: bool,
    kernel_btf: Option<&Btf>,
) -> anyhow::Result<Link> {
    if spec.needs_offsets && !have_offsets {
        anyhow::bail!("needs kernel struct offsets from BTF, which are unavailable");
    }
    match spec.hook {
        Hook::Tracepoint { category, name } => {
            if !events_dir.join(category).join(name).exists() {
                return Err(NotOnThisKernel(spec.hook.to_string()).into());
            }
            check_format(spec, events_dir)?;
            let p: &mut TracePoint = program(ebpf, spec.program)?;
            p.load().map_err(|e| permission_hint(e.into()))?;
            let id = p.attach(category, name)?;
            Ok(Link::Tracepoint(p.take_link(id)?))
        }
        Hook::BtfTracepoint { name } => {
            let btf = kernel_btf.context("kernel BTF unavailable")?;
            let p = load_btf_tracepoint(ebpf, spec.program, name, btf)?;
            let id = p.attach()?;
            Ok(Link::Btf(p.take_link(id)?))
        }
        Hook::Dispatch { .. } => {
            anyhow::bail!("dispatcher slots are filled by dispatch::Dispatcher")
        }
    }
}

/// The object's program `name`, as its program type `P`.
fn program<'e, P>(ebpf: &'e mut Ebpf, name: &str) -> anyhow::Result<&'e mut P>
where
    &'e mut Program: TryInto<&'e mut P, Error = ProgramError>,
{
    let p = ebpf
        .program_mut(name)
        .with_context(|| format!("program {name} missing from the object"))?;
    Ok(p.try_into()?)
}

/// The BTF tracepoint program `program`, loaded for the kernel's tracepoint `name`.
fn load_btf_tracepoint<'e>(
    ebpf: &'e mut Ebpf,
    program: &str,
    name: &str,
    btf: &Btf,
) -> anyhow::Result<&'e mut BtfTracePoint> {
    let p: &mut BtfTracePoint = self::program(ebpf, program)?;
    p.load(name, btf).map_err(|e| permission_hint(e.into()))?;
    Ok(p)
}

/// Checks the tracepoint record fields a program reads against tracefs. For a dispatcher slot it is the
/// syscall's `sys_enter_*` format: the argument order the registers are read in.
fn check_format(spec: &ProbeSpec, events_dir: &Path) -> anyhow::Result<()> {
    if spec.format.is_empty() {
        return Ok(());
    }
    let (category, name) = match spec.hook {
        Hook::Tracepoint { category, name } => (category, name.to_string()),
        Hook::Dispatch { syscall, .. } => {
            let name = format!("sys_enter_{syscall}");
            // No description of the syscall here (compiled out, e.g. init_module without module
            // support): the ABI table is the reference, and the call still reaches the dispatcher.
            if !events_dir.join("syscalls").join(&name).exists() {
                return Ok(());
            }
            ("syscalls", name)
        }
        Hook::BtfTracepoint { .. } => return Ok(()),
    };
    tracefs::Format::read(events_dir, category, &name)
        .and_then(|f| f.check(spec.format))
        .map_err(|e| anyhow::anyhow!("tracepoint format mismatch: {e}"))
}

/// The hook does not exist on this kernel: the probe is unavailable here, not failed.
#[derive(Debug, thiserror::Error)]
#[error("{0} does not exist on this kernel")]
struct NotOnThisKernel(String);

fn permission_hint(e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains("Operation not permitted") || text.contains("EPERM") {
        e.context("the kernel refused (EPERM): tripline needs root or CAP_BPF+CAP_PERFMON, and kernel.unprivileged_bpf_disabled / lockdown may forbid this hook")
    } else {
        e
    }
}

/// A counter slot's name, for tamper findings.
fn counter_name(i: u32) -> String {
    for e in EventKind::ALL {
        let k = u32::from(e.wire());
        if i == counter::SEEN + k {
            return format!("seen[{}]", e.as_str());
        }
        if i == counter::LOST + k {
            return format!("lost[{}]", e.as_str());
        }
    }
    match i {
        counter::READ_ERRORS => "read_errors".into(),
        counter::PENDING_FULL => "pending_full".into(),
        counter::FILE_FILTERED => "file_filtered".into(),
        counter::RESOLVE_FAILED => "resolve_failed".into(),
        counter::RESOLVE_TOO_DEEP => "resolve_too_deep".into(),
        counter::RESOLVE_TOO_LONG => "resolve_too_long".into(),
        counter::IO_URING_FIXED_FILE => "io_uring_fixed_file".into(),
        _ => format!("#{i}"),
    }
}

#[cfg(test)]
mod tests {
    /// The embedded probes keep their BTF (the loader needs it) and not their DWARF (stripped when
    /// built, see build.rs): a build that could not strip fails here instead of shipping and loading
    /// three times the bytes.
    #[test]
    fn embedded_probes_keep_btf_and_drop_dwarf() {
        let has = |name: &[u8]| super::PROBES_OBJECT.windows(name.len()).any(|w| w == name);
        assert!(has(b".BTF\0") && has(b".BTF.ext\0"), "no BTF in the probes");
        assert!(!has(b".debug_info\0"), "the probes still carry DWARF");
    }
}
