//! Maps, globals and helpers shared by every probe.
use core::ptr::{addr_of, read_volatile};

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_get_current_uid_gid, bpf_probe_read_kernel, bpf_probe_read_user_str_bytes,
        generated::{bpf_get_current_cgroup_id, bpf_ktime_get_boot_ns},
    },
    macros::map,
    maps::{LruHashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use tripline_common::{
    counter, flags, tp, FileEvent, Header, KernelOffsets, ProbeConfig, SysEvent, Syscall,
    WIRE_VERSION,
};

/// Offset of the return value in `sys_exit_*` records.
pub const SYS_EXIT_RET: usize = tp::SYS_EXIT.field("ret");

/// Events for userspace. Userspace sets the real size at load time (`ring_buffer_bytes`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 23, 0);

/// Per-CPU counters, read by userspace at scrape time; see `tripline_common::counter`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Filled by userspace from kernel BTF before load.
#[unsafe(no_mangle)]
pub static OFFSETS: KernelOffsets = unsafe { core::mem::zeroed() };

/// Filled by userspace before load.
#[unsafe(no_mangle)]
pub static CONFIG: ProbeConfig = ProbeConfig {
    self_pid: 0,
    wakeup_bytes: 0,
};

/// Reads one offset from `.rodata` without letting the compiler fold the zero it was compiled with.
macro_rules! off {
    ($field:ident) => {{
        #[allow(unused_unsafe)]
        let v = unsafe {
            core::ptr::read_volatile(core::ptr::addr_of!($crate::common::OFFSETS.$field))
        };
        v as usize
    }};
}
pub(crate) use off;

#[inline(always)]
pub fn offsets_valid() -> bool {
    unsafe { read_volatile(addr_of!(OFFSETS.valid)) != 0 }
}

#[inline(always)]
pub fn self_pid() -> u32 {
    unsafe { read_volatile(addr_of!(CONFIG.self_pid)) }
}

/// Flags for `submit`: skip the wake-up until enough data waits (batching cuts context switches).
#[inline(always)]
pub fn submit_flags() -> u64 {
    let threshold = unsafe { read_volatile(addr_of!(CONFIG.wakeup_bytes)) } as u64;
    if threshold == 0 {
        return 0;
    }
    if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= threshold {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

#[inline(always)]
pub fn count(index: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(index) {
        unsafe { *p += 1 };
    }
}

#[inline(always)]
pub fn count_seen(kind: u16) {
    count(counter::SEEN + kind as u32);
}

#[inline(always)]
pub fn count_lost(kind: u16) {
    count(counter::LOST + kind as u32);
}

/// True when the caller is the exporter itself.
#[inline(always)]
pub fn is_self() -> bool {
    (bpf_get_current_pid_tgid() >> 32) as u32 == self_pid()
}

#[inline(always)]
pub unsafe fn read_at<T>(base: *const u8, offset: usize) -> Result<T, i32> {
    unsafe { bpf_probe_read_kernel(base.add(offset) as *const T) }
}

#[inline(always)]
pub unsafe fn read_ptr(base: *const u8, offset: usize) -> Result<*const u8, i32> {
    unsafe { read_at::<*const u8>(base, offset) }
}

/// The current task's `struct task_struct *`.
#[inline(always)]
pub fn current_task() -> *const u8 {
    unsafe { bpf_get_current_task() as *const u8 }
}

/// Fills the common header from the current task.
#[inline(always)]
pub unsafe fn fill_header(h: *mut Header, kind: u16, len: usize) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let uid = uid_gid as u32;
    let gid = (uid_gid >> 32) as u32;
    unsafe {
        (*h).version = WIRE_VERSION;
        (*h).kind = kind;
        (*h).len = len as u32;
        (*h).ktime_ns = bpf_ktime_get_boot_ns();
        (*h).tid = pid_tgid as u32;
        (*h).pid = (pid_tgid >> 32) as u32;
        (*h).uid = uid;
        (*h).gid = gid;
        (*h).euid = uid;
        (*h).egid = gid;
        (*h).auid = u32::MAX;
        (*h).ppid = 0;
        (*h).start_ns = 0;
        (*h).parent_start_ns = 0;
        (*h).flags = 0;
        (*h)._pad0 = 0;
        (*h)._pad1 = 0;
        (*h).cgroup_id = bpf_get_current_cgroup_id();
        (*h).comm = bpf_get_current_comm().unwrap_or([0u8; 16]);
        if !offsets_valid() {
            (*h).flags |= flags::NO_OFFSETS;
            return;
        }
        if fill_task_fields(h, current_task()).is_err() {
            (*h).flags |= flags::READ_ERROR;
            count(counter::READ_ERRORS);
        }
    }
}

#[inline(always)]
unsafe fn fill_task_fields(h: *mut Header, task: *const u8) -> Result<(), i32> {
    unsafe {
        let leader = read_ptr(task, off!(task_group_leader))?;
        (*h).start_ns = read_at::<u64>(leader, off!(task_start_boottime))?;
        let cred = read_ptr(task, off!(task_cred))?;
        (*h).euid = read_at::<u32>(cred, off!(cred_euid))?;
        (*h).egid = read_at::<u32>(cred, off!(cred_egid))?;
        let loginuid = off!(task_loginuid);
        if loginuid != 0 {
            (*h).auid = read_at::<u32>(task, loginuid)?;
        }
        let parent = read_ptr(task, off!(task_real_parent))?;
        (*h).ppid = read_at::<u32>(parent, off!(task_tgid))?;
        let parent_leader = read_ptr(parent, off!(task_group_leader))?;
        (*h).parent_start_ns = read_at::<u64>(parent_leader, off!(task_start_boottime))?;
    }
    Ok(())
}

/// An event parked per thread between a syscall's entry and its exit.
pub trait Parked: Copy + 'static {
    fn kind(&self) -> u16;
    fn set_result(&mut self, result: i64);
}

impl Parked for FileEvent {
    fn kind(&self) -> u16 {
        self.header.kind
    }
    fn set_result(&mut self, result: i64) {
        self.result = result;
    }
}

impl Parked for SysEvent {
    fn kind(&self) -> u16 {
        self.header.kind
    }
    fn set_result(&mut self, result: i64) {
        self.result = result;
    }
}

/// Parks the event built at `ev` (per-CPU scratch) for the current thread.
#[inline(always)]
pub unsafe fn park<T: Parked>(map: &LruHashMap<u64, T>, ev: *const T) {
    // By reference on purpose: by value would copy the event onto the 512-byte BPF stack.
    #[allow(clippy::needless_borrows_for_generic_args)]
    let inserted = map.insert(bpf_get_current_pid_tgid(), unsafe { &*ev }, 0);
    if inserted.is_err() {
        count(counter::PENDING_FULL);
    }
}

/// At syscall exit: sends the thread's parked event with the syscall's result, then forgets it.
#[inline(always)]
pub fn emit_parked<T: Parked>(map: &LruHashMap<u64, T>, ctx: &TracePointContext) {
    let key = bpf_get_current_pid_tgid();
    let Some(parked) = map.get_ptr_mut(key) else {
        return;
    };
    let k = unsafe { (*parked).kind() };
    count_seen(k);
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            let ev = entry.as_mut_ptr();
            unsafe {
                core::ptr::copy_nonoverlapping(parked as *const T, ev, 1);
                (*ev).set_result(ctx.read_at::<i64>(SYS_EXIT_RET).unwrap_or(0));
            }
            entry.submit(submit_flags());
        }
        None => count_lost(k),
    }
    let _ = map.remove(key);
}

/// A `sys_enter_X` program running `$enter(&ctx, &$spec)` and a `sys_exit_X` program emitting what
/// it parked in `$map`.
macro_rules! probe_pair {
    ($enter_fn:ident, $map:ident, $enter:ident, $exit:ident, $spec:expr) => {
        #[aya_ebpf::macros::tracepoint]
        pub fn $enter(ctx: aya_ebpf::programs::TracePointContext) -> u32 {
            let _ = $enter_fn(&ctx, &const { $spec });
            0
        }

        #[aya_ebpf::macros::tracepoint]
        pub fn $exit(ctx: aya_ebpf::programs::TracePointContext) -> u32 {
            $crate::common::emit_parked(&$map, &ctx);
            0
        }
    };
}
pub(crate) use probe_pair;

/// A hooked syscall for [`sys_enter`]: its ABI row and which arguments are user strings.
pub struct SysSpec {
    pub sc: Syscall,
    /// Argument index holding a user string for `name` / `name2` (`NO_NAME` = none).
    pub name_arg: usize,
    pub name2_arg: usize,
}

pub const NO_NAME: usize = usize::MAX;

impl SysSpec {
    pub const fn plain(sc: Syscall) -> SysSpec {
        SysSpec {
            sc,
            name_arg: NO_NAME,
            name2_arg: NO_NAME,
        }
    }
}

/// `sys_enter_*` for the privilege and tamper families: reads up to four arguments at the ABI table's
/// offsets, keeps the call when `interesting` says so (it may fill argument slots the syscall does not
/// use with what it learned), reads the name strings and parks the event with the
/// caller's identity before the call; `sys_exit_*` adds the result.
#[inline(always)]
pub fn sys_enter(
    ctx: &TracePointContext,
    s: &SysSpec,
    interesting: fn(u32, &mut [u64; 4]) -> bool,
) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    let mut args = [0u64; 4];
    for (i, a) in args.iter_mut().enumerate() {
        if i < s.sc.args.len() {
            *a = unsafe { ctx.read_at::<u64>(s.sc.nth(i))? };
        }
    }
    if !interesting(s.sc.op, &mut args) {
        return Ok(());
    }
    let Some(ev) = SYS_SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    unsafe {
        (*ev).op = s.sc.op;
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
            s.sc.kind,
            core::mem::size_of::<SysEvent>(),
        );
        park(&SYS_PENDING, ev);
    }
    Ok(())
}

#[map]
static SYS_SCRATCH: PerCpuArray<SysEvent> = PerCpuArray::with_max_entries(1, 0);

/// Privilege and tamper syscalls parked between entry and exit.
#[map]
pub static SYS_PENDING: LruHashMap<u64, SysEvent> = LruHashMap::with_max_entries(4096, 0);
