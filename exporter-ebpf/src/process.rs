//! Process lifecycle: exec, fork (new processes only), exit (whole thread group).
use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_probe_read_kernel_str_bytes, generated::bpf_probe_read_user},
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
    EbpfContext,
};
use tripline_common::{
    counter, flags, kind, resolve, tp, ExecEvent, ExitEvent, ForkEvent, ARGS_LEN, FILENAME_LEN,
};

use crate::common::{
    count, count_lost, count_seen, current_task, fill_header, is_self, off, offsets_valid, read_at,
    read_ptr, submit_flags, EVENTS,
};
use crate::path;

#[tracepoint]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    let _ = try_exec(&ctx);
    0
}

fn try_exec(ctx: &TracePointContext) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    count_seen(kind::EXEC);
    let Some(mut entry) = EVENTS.reserve::<ExecEvent>(0) else {
        count_lost(kind::EXEC);
        return Ok(());
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        fill_header(
            &raw mut (*ev).header,
            kind::EXEC,
            core::mem::size_of::<ExecEvent>(),
        );
        (*ev)._pad = 0;
        (*ev).filename_len = 0;
        (*ev).args_len = 0;
        (*ev).exe_len = 0;
        (*ev).cwd_len = 0;
        (*ev).exe_flags = 0;
        (*ev).cwd_flags = 0;

        // filename: __data_loc char[] — low 16 bits are the offset into the record.
        if let Ok(loc) = ctx.read_at::<u32>(const { tp::SCHED_PROCESS_EXEC.field("filename") }) {
            let src = (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize);
            if let Ok(s) = bpf_probe_read_kernel_str_bytes(src, &mut (*ev).filename) {
                let n = s.len();
                (*ev).filename_len = n as u16;
                if n >= FILENAME_LEN - 1 {
                    (*ev).header.flags |= flags::FILENAME_TRUNCATED;
                }
            }
        }

        if offsets_valid() && read_args(ev).is_err() {
            (*ev).header.flags |= flags::READ_ERROR;
            count(counter::READ_ERRORS);
        }
        if offsets_valid() {
            // Failures are counted by the walk; userspace falls back to procfs.
            let _ = exec_paths(ev);
        }
        (*ev).header.flags |= path::stdio_flags();
    }
    entry.submit(submit_flags());
    Ok(())
}

/// The new image's executable (`mm->exe_file`) and the working directory, resolved from the kernel's
/// dentries and mounts (`path.rs`), with `resolve::DELETED` when the executable has no links left.
#[inline(always)]
unsafe fn exec_paths(ev: *mut ExecEvent) -> Result<(), i32> {
    unsafe {
        let mm = read_ptr(current_task(), off!(task_mm))?;
        let file = read_ptr(mm, off!(mm_exe_file))?;
        if !file.is_null() {
            if let Ok((len, f)) = path::resolve(path::f_path(file), (*ev).exe.as_mut_ptr()) {
                (*ev).exe_len = len;
                (*ev).exe_flags = f | resolve::KERNEL;
                let inode = read_ptr(file, off!(file_f_inode))?;
                if read_at::<u32>(inode, off!(inode_i_nlink))? == 0 {
                    (*ev).exe_flags |= resolve::DELETED;
                }
            }
        }
        let pwd = path::pwd()?;
        if let Ok((len, f)) = path::resolve(pwd, (*ev).cwd.as_mut_ptr()) {
            (*ev).cwd_len = len;
            (*ev).cwd_flags = f | resolve::KERNEL;
        }
    }
    Ok(())
}

/// Copies argv (NUL-separated) from the new image's `mm->arg_start..arg_end`.
#[inline(always)]
unsafe fn read_args(ev: *mut ExecEvent) -> Result<(), i32> {
    unsafe {
        let mm = read_ptr(current_task(), off!(task_mm))?;
        let start = read_at::<u64>(mm, off!(mm_arg_start))?;
        let end = read_at::<u64>(mm, off!(mm_arg_end))?;
        if end <= start {
            return Ok(());
        }
        let mut len = (end - start) as usize;
        if len >= ARGS_LEN {
            len = ARGS_LEN - 1;
            (*ev).header.flags |= flags::ARGS_TRUNCATED;
        }
        // The mask restates the bound for the verifier.
        let len = len & (ARGS_LEN - 1);
        let ret = bpf_probe_read_user(
            (*ev).args.as_mut_ptr() as *mut c_void,
            len as u32,
            start as *const c_void,
        );
        if ret != 0 {
            return Err(ret as i32);
        }
        (*ev).args_len = len as u16;
    }
    Ok(())
}

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`: the child's tgid tells a
/// new process from a new thread, which the plain tracepoint cannot.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    let _ = try_fork(&ctx);
    0
}

fn try_fork(ctx: &BtfTracePointContext) -> Result<(), i32> {
    if !offsets_valid() || is_self() {
        return Ok(());
    }
    let child: *const u8 = ctx.arg(1);
    let (child_pid, child_tid, child_start) = unsafe {
        (
            read_at::<u32>(child, off!(task_tgid))?,
            read_at::<u32>(child, off!(task_pid))?,
            read_at::<u64>(child, off!(task_start_boottime))?,
        )
    };
    if child_pid != child_tid {
        return Ok(()); // a thread: the process tree does not need it
    }
    emit_fork(child_pid, child_start);
    Ok(())
}

/// Fallback when BTF tracepoints are refused: the plain tracepoint cannot tell threads from processes,
/// so every clone is reported (userspace ignores children it already knows).
#[tracepoint]
pub fn sched_process_fork_tp(ctx: TracePointContext) -> u32 {
    if is_self() {
        return 0;
    }
    if let Ok(child_pid) =
        unsafe { ctx.read_at::<i32>(const { tp::SCHED_PROCESS_FORK.field("child_pid") }) }
    {
        emit_fork(child_pid as u32, 0);
    }
    0
}

#[inline(always)]
fn emit_fork(child_pid: u32, child_start_ns: u64) {
    count_seen(kind::FORK);
    let Some(mut entry) = EVENTS.reserve::<ForkEvent>(0) else {
        count_lost(kind::FORK);
        return;
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        fill_header(
            &raw mut (*ev).header,
            kind::FORK,
            core::mem::size_of::<ForkEvent>(),
        );
        (*ev).child_pid = child_pid;
        (*ev)._pad = 0;
        (*ev).child_start_ns = child_start_ns;
    }
    entry.submit(submit_flags());
}

/// `sched_process_exit`: reported once per process, when its thread group is dead.
#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    let _ = try_exit(&ctx);
    0
}

fn try_exit(ctx: &TracePointContext) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    // bool group_dead (offset from the ABI table, checked against tracefs by userspace before attach).
    let group_dead: u8 =
        unsafe { ctx.read_at(const { tp::SCHED_PROCESS_EXIT.field("group_dead") })? };
    if group_dead == 0 {
        return Ok(());
    }
    count_seen(kind::EXIT);
    let Some(mut entry) = EVENTS.reserve::<ExitEvent>(0) else {
        count_lost(kind::EXIT);
        return Ok(());
    };
    let ev = entry.as_mut_ptr();
    unsafe {
        fill_header(
            &raw mut (*ev).header,
            kind::EXIT,
            core::mem::size_of::<ExitEvent>(),
        );
        (*ev)._pad = 0;
        (*ev).exit_code = if offsets_valid() {
            read_at::<u32>(current_task(), off!(task_exit_code)).unwrap_or(0)
        } else {
            0
        };
    }
    entry.submit(submit_flags());
    Ok(())
}
