//! io_uring: who sets up rings, which opcodes each process submits (once per process and opcode), and
//! file writes and opens done through a ring, judged like the syscalls in `file.rs`.
//!
//! * `io_uring:io_uring_create` → `IO_URING_SETUP` (fd, sq entries, setup flags).
//! * `io_uring:io_uring_submit_req` → `IO_URING_OP` the first time a process submits an opcode
//!   (deduplicated in `URING_SEEN`, keyed by pid and opcode, checked against the process start time).
//! * `io_uring:io_uring_file_get` (a request's file looked up from a plain fd, in the submitter's file
//!   table) → for writing opcodes, the file's canonical path and identity; a watched one is a
//!   `FILE_WRITE` event with `resolve::IO_URING` and the opcode in `op`.
//! * `io_uring:io_uring_complete` → for OPENAT/OPENAT2 that returned an fd, the file behind it: a write
//!   open of a watched file is a `FILE_WRITE`, a read of a sensitive inode a `SENSITIVE_READ`.
//!
//! Registered (fixed) files are not in the file table: counted in `counter::IO_URING_FIXED_FILE`.
use aya_ebpf::{
    helpers::bpf_probe_read_kernel,
    macros::{map, tracepoint},
    maps::{LruHashMap, PerCpuArray},
    programs::TracePointContext,
};
use tripline_common::{counter, inode_class, io_uring_op, kind, resolve, tp, FileEvent, SysEvent};

use crate::common::{
    count, count_lost, count_seen, fill_header, is_self, off, offsets_valid, submit_flags, EVENTS,
};
use crate::file::{output, resolve_path, watched_resolved};
use crate::path::{class_of, f_mode, file_of_fd, identity, FMODE_WRITE};

/// (pid << 8 | opcode) → start time of the process that submitted it first.
#[map]
static URING_SEEN: LruHashMap<u64, u64> = LruHashMap::with_max_entries(8192, 0);

#[map]
static URING_SCRATCH: PerCpuArray<FileEvent> = PerCpuArray::with_max_entries(1, 0);

/// `REQ_F_FIXED_FILE` (bit 0 of `io_kiocb.flags`).
const REQ_F_FIXED_FILE: u64 = 1;

#[inline(always)]
fn emit_sys(kind: u16, args: [u64; 4]) {
    count_seen(kind);
    match EVENTS.reserve::<SysEvent>(0) {
        Some(mut entry) => {
            let ev = entry.as_mut_ptr();
            unsafe {
                (*ev).op = 0;
                (*ev).name_len = 0;
                (*ev).name2_len = 0;
                (*ev).args = args;
                (*ev).result = 0;
                fill_header(
                    &raw mut (*ev).header,
                    kind,
                    core::mem::size_of::<SysEvent>(),
                );
            }
            entry.submit(submit_flags());
        }
        None => count_lost(kind),
    }
}

#[tracepoint]
pub fn io_uring_create(ctx: TracePointContext) -> u32 {
    let _ = try_create(&ctx);
    0
}

fn try_create(ctx: &TracePointContext) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    let fd: i32 = unsafe { ctx.read_at(const { tp::IO_URING_CREATE.field("fd") })? };
    let sq: u32 = unsafe { ctx.read_at(const { tp::IO_URING_CREATE.field("sq_entries") })? };
    let flags: u32 = unsafe { ctx.read_at(const { tp::IO_URING_CREATE.field("flags") })? };
    emit_sys(
        kind::IO_URING_SETUP,
        [fd as u64, sq as u64, flags as u64, 0],
    );
    Ok(())
}

#[tracepoint]
pub fn io_uring_submit_req(ctx: TracePointContext) -> u32 {
    let _ = try_submit(&ctx);
    0
}

fn try_submit(ctx: &TracePointContext) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    let opcode: u8 = unsafe { ctx.read_at(const { tp::IO_URING_SUBMIT_REQ.field("opcode") })? };
    let flags: u64 = unsafe { ctx.read_at(const { tp::IO_URING_SUBMIT_REQ.field("flags") })? };
    let sq_thread: u8 =
        unsafe { ctx.read_at(const { tp::IO_URING_SUBMIT_REQ.field("sq_thread") })? };
    if io_uring_op::writes(opcode) && flags & REQ_F_FIXED_FILE != 0 {
        count(counter::IO_URING_FIXED_FILE);
    }
    let pid = aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32;
    let key = (pid << 8) | opcode as u64;
    let start = leader_start();
    if let Some(seen) = unsafe { URING_SEEN.get(key) } {
        if *seen == start {
            return Ok(());
        }
    }
    let _ = URING_SEEN.insert(key, start, 0);
    emit_sys(
        kind::IO_URING_OP,
        [opcode as u64, flags, sq_thread as u64, 0],
    );
    Ok(())
}

/// The start time of the current thread group's leader (0 without offsets).
#[inline(always)]
fn leader_start() -> u64 {
    if !offsets_valid() {
        return 0;
    }
    unsafe {
        let task = crate::common::current_task();
        let Ok(leader) = crate::common::read_ptr(task, off!(task_group_leader)) else {
            return 0;
        };
        crate::common::read_at::<u64>(leader, off!(task_start_boottime)).unwrap_or(0)
    }
}

/// The request's opcode (`io_kiocb.opcode`, from BTF; `None` when the kernel's BTF lacks it).
#[inline(always)]
fn opcode_of(req: *const u8) -> Option<u8> {
    let o = off!(io_kiocb_opcode);
    if o == 0 || req.is_null() {
        return None;
    }
    unsafe { bpf_probe_read_kernel(req.add(o)).ok() }
}

#[tracepoint]
pub fn io_uring_file_get(ctx: TracePointContext) -> u32 {
    let _ = try_file_get(&ctx);
    0
}

fn try_file_get(ctx: &TracePointContext) -> Result<(), i32> {
    if is_self() || !offsets_valid() {
        return Ok(());
    }
    let req: *const u8 = unsafe { ctx.read_at(const { tp::IO_URING_FILE_GET.field("req") })? };
    let fd: i32 = unsafe { ctx.read_at(const { tp::IO_URING_FILE_GET.field("fd") })? };
    let Some(op) = opcode_of(req) else {
        return Ok(());
    };
    if !io_uring_op::writes(op) || fd < 0 {
        return Ok(());
    }
    let file = unsafe { file_of_fd(fd as u64)? };
    judge(file, op, fd, 0, true)
}

#[tracepoint]
pub fn io_uring_complete(ctx: TracePointContext) -> u32 {
    let _ = try_complete(&ctx);
    0
}

fn try_complete(ctx: &TracePointContext) -> Result<(), i32> {
    if is_self() || !offsets_valid() {
        return Ok(());
    }
    let req: *const u8 = unsafe { ctx.read_at(const { tp::IO_URING_COMPLETE.field("req") })? };
    let res: i32 = unsafe { ctx.read_at(const { tp::IO_URING_COMPLETE.field("res") })? };
    let Some(op) = opcode_of(req) else {
        return Ok(());
    };
    if op != io_uring_op::OPENAT && op != io_uring_op::OPENAT2 {
        return Ok(());
    }
    if res < 0 {
        return Ok(());
    }
    let file = unsafe { file_of_fd(res as u64)? };
    let write = unsafe { f_mode(file)? } & FMODE_WRITE != 0;
    judge(file, op, -1, res as i64, write)
}

/// Reports `file` if a write (`write`) to a watched path or inode, or a read of a sensitive inode.
#[inline(always)]
fn judge(file: *const u8, op: u8, fd: i32, result: i64, write: bool) -> Result<(), i32> {
    let id = unsafe { identity(file)? };
    let class = class_of(&id);
    if !write && class & inode_class::SENSITIVE_MASK == 0 {
        return Ok(());
    }
    let ev = URING_SCRATCH.get_ptr_mut(0).ok_or(0)?;
    unsafe {
        (*ev).resolve = resolve::IO_URING;
        (*ev).path2_len = 0;
        (*ev).spelled_len = 0;
        (*ev).uid_arg = u32::MAX;
        (*ev).gid_arg = u32::MAX;
        (*ev).flags = 0;
        (*ev).mode = 0;
        (*ev).dirfd = fd;
        (*ev).op = op as u32;
        (*ev).result = result;
        (*ev).dev = id.dev;
        (*ev).ino = id.ino;
        (*ev).class = class;
        // A write is kept only for a watched inode or path: the path may stop at its first component.
        resolve_path(ev, file, write && class & inode_class::WATCHED == 0);
        let k = if write {
            if class & inode_class::WATCHED != 0 {
                (*ev).resolve |= resolve::BY_INODE;
            } else if (*ev).resolve & resolve::KERNEL == 0
                || !watched_resolved((*ev).path.as_ptr(), (*ev).path_len as usize)
            {
                count(counter::FILE_FILTERED);
                return Ok(());
            }
            kind::FILE_WRITE
        } else {
            kind::SENSITIVE_READ
        };
        fill_header(&raw mut (*ev).header, k, core::mem::size_of::<FileEvent>());
        output(ev, k);
    }
    Ok(())
}
