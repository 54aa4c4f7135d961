//! Maps, globals and helpers shared by every probe.
use core::ptr::{addr_of, read_volatile};

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_get_current_uid_gid, bpf_probe_read_kernel, bpf_probe_read_user_str_bytes,
        generated::{bpf_get_current_cgroup_id, bpf_get_current_task_btf, bpf_ktime_get_boot_ns},
    },
    macros::map,
    maps::{LruHashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};
use tripline_common::{
    counter, flags, tp, FileEvent, Header, KernelOffsets, ProbeConfig, SysEvent, Syscall,
    HOOKED_WORDS, SYSCALL_SLOTS, WIRE_VERSION,
};

/// Offset of the return value in `sys_exit_*` records.
pub const SYS_EXIT_RET: usize = tp::SYS_EXIT.field("ret");

/// A syscall's arguments and result, however its program was reached: a `syscalls:sys_*` tracepoint
/// record, or the registers the raw `sys_enter`/`sys_exit` dispatcher passed on.
pub trait SysArgs {
    /// The argument at `offset` of the `sys_enter_*` record (the ABI table's offsets: 16 + 8 × index).
    unsafe fn read_at<T>(&self, offset: usize) -> Result<T, i32>;
    /// The syscall's return value (exit programs only).
    fn ret(&self) -> i64;
    /// Whether an exit program can read the call's arguments itself: the dispatcher's `pt_regs` still
    /// hold them at `sys_exit` (entry saved the user registers and only the return value is written back);
    /// a `syscalls:sys_exit_*` record has the result alone. Where it can, an entry program need not park
    /// the arguments in a map for the exit.
    const ARGS_AT_EXIT: bool;
    /// At exit, the context that reads the arguments in the call's ABI (see [`Self::ARGS_AT_EXIT`]).
    fn with_abi(&self) -> Self;
}

impl SysArgs for TracePointContext {
    #[inline(always)]
    unsafe fn read_at<T>(&self, offset: usize) -> Result<T, i32> {
        unsafe { TracePointContext::read_at(self, offset) }
    }

    #[inline(always)]
    fn ret(&self) -> i64 {
        unsafe { TracePointContext::read_at::<i64>(self, SYS_EXIT_RET) }.unwrap_or(0)
    }

    const ARGS_AT_EXIT: bool = false;

    #[inline(always)]
    fn with_abi(&self) -> Self {
        TracePointContext::new(aya_ebpf::EbpfContext::as_ptr(self))
    }
}

/// What the raw dispatcher hands a syscall's program: the user registers (`struct pt_regs *`, arg 0 of
/// both raw tracepoints) and arg 1: the syscall number at entry, the return value at exit; and whether
/// the call uses the 32-bit ABI.
pub struct RawSys {
    regs: *const u8,
    second: i64,
    compat: bool,
}

impl RawSys {
    /// From the tracepoint's two arguments (`regs`, then the number or the result).
    #[inline(always)]
    fn new(regs: u64, second: i64, compat: bool) -> RawSys {
        RawSys {
            regs: regs as *const u8,
            second,
            compat,
        }
    }

    #[inline(always)]
    pub fn enter(ctx: &RawTracePointContext) -> RawSys {
        RawSys::new(ctx.arg(0), ctx.arg(1), compat_syscall())
    }

    /// At exit most programs read only the result: which ABI does not matter (the arguments are read
    /// through [`SysArgs::with_abi`]).
    #[inline(always)]
    pub fn exit(ctx: &RawTracePointContext) -> RawSys {
        RawSys::new(ctx.arg(0), ctx.arg(1), false)
    }

    /// [`RawSys::exit`] for a program the BTF dispatcher reached: the same two arguments of `sys_exit`.
    #[inline(always)]
    pub fn exit_btf(ctx: &BtfTracePointContext) -> RawSys {
        RawSys::new(ctx.arg(0), ctx.arg(1), false)
    }
}

impl SysArgs for RawSys {
    /// Argument `n` of the syscall ABI, at the `pt_regs` offsets userspace read from BTF: di, si, dx,
    /// r10, r8, r9 for 64-bit calls; bx, cx, dx, si, di, bp (32 bits, zero-extended) for 32-bit ones.
    #[inline(always)]
    unsafe fn read_at<T>(&self, offset: usize) -> Result<T, i32> {
        let n = (offset - 16) / 8;
        if !self.compat {
            let reg = match n {
                0 => off!(regs_arg0),
                1 => off!(regs_arg1),
                2 => off!(regs_arg2),
                3 => off!(regs_arg3),
                4 => off!(regs_arg4),
                _ => off!(regs_arg5),
            };
            return unsafe { bpf_probe_read_kernel(self.regs.add(reg) as *const T) };
        }
        let reg = match n {
            0 => off!(regs_compat_arg0),
            1 => off!(regs_compat_arg1),
            2 => off!(regs_compat_arg2),
            3 => off!(regs_compat_arg3),
            4 => off!(regs_compat_arg4),
            _ => off!(regs_compat_arg5),
        };
        let low = unsafe { bpf_probe_read_kernel(self.regs.add(reg) as *const u32)? };
        let wide = low as u64;
        // Every argument type read is at most 8 bytes; little-endian, so a narrower one is the low part.
        Ok(unsafe { core::ptr::read_unaligned(&wide as *const u64 as *const T) })
    }

    #[inline(always)]
    fn ret(&self) -> i64 {
        self.second
    }

    const ARGS_AT_EXIT: bool = true;

    #[inline(always)]
    fn with_abi(&self) -> Self {
        RawSys {
            regs: self.regs,
            second: self.second,
            compat: compat_syscall(),
        }
    }
}

/// Programs for hooked syscalls, by syscall number: entry and exit; 64-bit calls at their number, 32-bit
/// (compat) calls at `SYSCALL_SLOTS + number`. Userspace fills the slots of the syscalls it hooks; the
/// dispatchers below tail-call into them. A missing slot costs one failed tail call.
#[map]
pub static SYS_ENTER_PROGS: ProgramArray = ProgramArray::with_max_entries(2 * SYSCALL_SLOTS, 0);
#[map]
pub static SYS_EXIT_PROGS: ProgramArray = ProgramArray::with_max_entries(2 * SYSCALL_SLOTS, 0);
/// The exit programs for [`sys_exit_dispatch_btf`]: a tail call stays within one program type (and,
/// for BTF programs, one hook), so they are the `btf_exit_X` twins of the `raw_exit_X` programs.
#[map]
pub static SYS_EXIT_PROGS_BTF: ProgramArray = ProgramArray::with_max_entries(2 * SYSCALL_SLOTS, 0);

/// Whether the current syscall uses the 32-bit compat ABI (`int 0x80`, or any call of a 32-bit
/// process): its number and registers mean something else. Userspace attaches the dispatcher only when
/// the offset is known.
#[inline(always)]
fn compat_syscall() -> bool {
    let status = off!(thread_info_status);
    let task = current_task();
    unsafe { read_at::<u32>(task, off!(task_thread_info) + status) }
        .is_ok_and(|s| s & TS_COMPAT != 0)
}

/// `TS_COMPAT` in x86's `thread_info.status`.
const TS_COMPAT: u32 = 0x0002;

/// The program-array slot of syscall `id`, or none: out of range, to be run in neither ABI (`hooked`:
/// the entry or exit bitmap; most syscalls are decided from `.rodata` without a helper call), or ours.
#[inline(always)]
fn dispatch_slot(id: i64, hooked: &[u64; HOOKED_WORDS]) -> Option<u32> {
    if id < 0 || id >= SYSCALL_SLOTS as i64 {
        return None;
    }
    let (native, compat) = (id as u32, SYSCALL_SLOTS + id as u32);
    let word =
        |slot: u32| unsafe { read_volatile(&hooked[(slot as usize / 64) & (HOOKED_WORDS - 1)]) };
    let bit = |slot: u32| word(slot) & (1 << (slot % 64)) != 0;
    if !bit(native) && !bit(compat) {
        return None;
    }
    if is_self() {
        return None;
    }
    Some(if compat_syscall() { compat } else { native })
}

/// Continues syscall `id` in its program from `progs` when `hooked` says it is hooked (a tail call:
/// no return on success).
#[inline(always)]
fn dispatch<C: aya_ebpf::EbpfContext>(
    ctx: &C,
    id: i64,
    hooked: &[u64; HOOKED_WORDS],
    progs: &ProgramArray,
) {
    if let Some(slot) = dispatch_slot(id, hooked) {
        unsafe { progs.tail_call(ctx, slot) };
    }
}

/// Every syscall enters here (raw tracepoint `sys_enter`: regs, id); hooked ones continue in their
/// program. Our own calls stop here.
#[aya_ebpf::macros::raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter_dispatch(ctx: RawTracePointContext) -> i32 {
    let hooked = unsafe { &*addr_of!(CONFIG.hooked_enter) };
    dispatch(&ctx, ctx.arg::<i64>(1), hooked, &SYS_ENTER_PROGS);
    0
}

/// Every syscall leaves here (raw tracepoint `sys_exit`: regs, ret); the number is `regs->orig_ax`.
#[aya_ebpf::macros::raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit_dispatch(ctx: RawTracePointContext) -> i32 {
    let regs = ctx.arg::<u64>(0) as *const u8;
    let Ok(id) = (unsafe { read_at::<i64>(regs, off!(regs_nr)) }) else {
        return 0;
    };
    let hooked = unsafe { &*addr_of!(CONFIG.hooked_exit) };
    dispatch(&ctx, id, hooked, &SYS_EXIT_PROGS);
    0
}

/// [`sys_exit_dispatch`] as a BTF tracepoint, which userspace attaches instead where it loads: here
/// `regs` is a typed pointer (`struct pt_regs *`, from the kernel's BTF of the tracepoint), so the number
/// is a plain load the verifier checks against the struct, not a helper call. Every syscall on the host
/// passes through this program, so the helper call it saves is the larger part of its cost.
#[aya_ebpf::macros::btf_tracepoint(function = "sys_exit")]
pub fn sys_exit_dispatch_btf(ctx: BtfTracePointContext) -> i32 {
    let regs = ctx.arg::<u64>(0) as *const u8;
    let id = unsafe { read_volatile(regs.add(off!(regs_nr)) as *const i64) };
    let hooked = unsafe { &*addr_of!(CONFIG.hooked_exit) };
    dispatch(&ctx, id, hooked, &SYS_EXIT_PROGS_BTF);
    0
}

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
    hooked_enter: [0; tripline_common::HOOKED_WORDS],
    hooked_exit: [0; tripline_common::HOOKED_WORDS],
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

/// Bytes [`read_pair`] reads with one helper call.
const PAIR_WINDOW: usize = 32;

/// Two fields of one kernel object, `A` at `off_a` and `B` at `off_b`: with one helper call when both lie
/// within [`PAIR_WINDOW`] bytes (exactly the bytes spanned, nothing outside the two fields' span), else
/// with two. A helper call is most of the cost of a read; the offsets come from `.rodata`, which the
/// verifier reads as constants, so the span and the fields' places in the copy are constants too.
#[inline(always)]
pub unsafe fn read_pair<A, B>(base: *const u8, off_a: usize, off_b: usize) -> Result<(A, B), i32> {
    let (size_a, size_b) = (core::mem::size_of::<A>(), core::mem::size_of::<B>());
    let lo = if off_a < off_b { off_a } else { off_b };
    let end = if off_a + size_a > off_b + size_b {
        off_a + size_a
    } else {
        off_b + size_b
    };
    if end - lo > PAIR_WINDOW {
        return unsafe { Ok((read_at::<A>(base, off_a)?, read_at::<B>(base, off_b)?)) };
    }
    // Written by the helper before any read (the verifier checks): no need to clear it first.
    let mut buf = core::mem::MaybeUninit::<[u64; PAIR_WINDOW / 8]>::uninit();
    let copy = buf.as_mut_ptr() as *mut u8;
    let r = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_kernel(
            copy as *mut _,
            (end - lo) as u32,
            base.add(lo) as *const _,
        )
    };
    if r < 0 {
        return Err(r as i32);
    }
    unsafe { Ok((field(copy, off_a - lo), field(copy, off_b - lo))) }
}

/// The `T` at byte `at` of an 8-aligned copy: one load when `at` is aligned for `T` (kernel fields are),
/// bytes otherwise (the BPF instruction set has no unaligned loads).
#[inline(always)]
unsafe fn field<T>(copy: *const u8, at: usize) -> T {
    unsafe {
        if at.is_multiple_of(core::mem::align_of::<T>()) {
            core::ptr::read(copy.add(at) as *const T)
        } else {
            core::ptr::read_unaligned(copy.add(at) as *const T)
        }
    }
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
        fill_task_fields(h);
    }
}

/// A `T` at `offset` in `base`, a kernel object the verifier types from the kernel's BTF (the task from
/// `bpf_get_current_task_btf` and the pointers read out of it): a plain load, which the verifier checks
/// against the struct's members (`offset` is a constant to it: `.rodata`) and the JIT guards (a fault
/// reads zero), instead of a `bpf_probe_read_kernel` call.
#[inline(always)]
unsafe fn load<T>(base: *const u8, offset: usize) -> T {
    unsafe { read_volatile(base.add(offset) as *const T) }
}

/// The header's fields from the current task: start times, credentials, login uid, parent. Every
/// event carries them, so they are direct loads through the task's BTF type (nine helper calls were
/// ~0.2 µs per event).
#[inline(always)]
unsafe fn fill_task_fields(h: *mut Header) {
    unsafe {
        let task = bpf_get_current_task_btf() as *const u8;
        let leader: *const u8 = load(task, off!(task_group_leader));
        (*h).start_ns = load::<u64>(leader, off!(task_start_boottime));
        let cred: *const u8 = load(task, off!(task_cred));
        (*h).euid = load::<u32>(cred, off!(cred_euid));
        (*h).egid = load::<u32>(cred, off!(cred_egid));
        let loginuid = off!(task_loginuid);
        if loginuid != 0 {
            (*h).auid = load::<u32>(task, loginuid);
        }
        let parent: *const u8 = load(task, off!(task_real_parent));
        (*h).ppid = load::<u32>(parent, off!(task_tgid));
        let parent_leader: *const u8 = load(parent, off!(task_group_leader));
        (*h).parent_start_ns = load::<u64>(parent_leader, off!(task_start_boottime));
    }
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
pub fn emit_parked<T: Parked, C: SysArgs>(map: &LruHashMap<u64, T>, ctx: &C) {
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
                (*ev).set_result(ctx.ret());
            }
            entry.submit(submit_flags());
        }
        None => count_lost(k),
    }
    let _ = map.remove(key);
}

/// The programs of one hooked syscall `X`: `sys_enter_X`/`sys_exit_X` for the `syscalls:` tracepoints,
/// and `raw_enter_X`/`raw_exit_X`, reached through the raw `sys_enter`/`sys_exit` dispatcher's tail
/// calls (`btf_exit_X` for the BTF exit dispatcher's). Both enter programs run `$enter(ctx, spec)` on
/// the same arguments ([`SysArgs`]); every exit program runs `$exit(ctx)`. Userspace uses one set
/// (`sensor.syscall_hooks`, and which exit dispatcher attached).
macro_rules! syscall_programs {
    ($name:ident, $enter:expr, $exit:expr) => {
        #[aya_ebpf::macros::tracepoint]
        pub fn ${concat(sys_enter_, $name)}(ctx: aya_ebpf::programs::TracePointContext) -> u32 {
            let _ = ($enter)(&ctx);
            0
        }

        #[aya_ebpf::macros::raw_tracepoint]
        pub fn ${concat(raw_enter_, $name)}(ctx: aya_ebpf::programs::RawTracePointContext) -> i32 {
            let _ = ($enter)(&$crate::common::RawSys::enter(&ctx));
            0
        }

        $crate::common::syscall_programs!($name, exit: $exit);
    };
    ($name:ident, exit: $exit:expr) => {
        #[aya_ebpf::macros::tracepoint]
        pub fn ${concat(sys_exit_, $name)}(ctx: aya_ebpf::programs::TracePointContext) -> u32 {
            let _ = ($exit)(&ctx);
            0
        }

        #[aya_ebpf::macros::raw_tracepoint]
        pub fn ${concat(raw_exit_, $name)}(ctx: aya_ebpf::programs::RawTracePointContext) -> i32 {
            let _ = ($exit)(&$crate::common::RawSys::exit(&ctx));
            0
        }

        #[aya_ebpf::macros::btf_tracepoint(function = "sys_exit")]
        pub fn ${concat(btf_exit_, $name)}(ctx: aya_ebpf::programs::BtfTracePointContext) -> i32 {
            let _ = ($exit)(&$crate::common::RawSys::exit_btf(&ctx));
            0
        }
    };
}
pub(crate) use syscall_programs;

/// A hooked syscall whose entry runs `$enter_fn(ctx, &$spec)` and parks an event in `$map`, and whose exit
/// emits it with the result ([`emit_parked`]).
macro_rules! probe_pair {
    ($enter_fn:ident, $map:ident, $name:ident, $spec:expr) => {
        $crate::common::syscall_programs!($name, |ctx| $enter_fn(ctx, &const { $spec }), |ctx| {
            $crate::common::emit_parked(&$map, ctx);
            Ok::<(), i32>(())
        });
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
pub fn sys_enter<C: SysArgs>(
    ctx: &C,
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
