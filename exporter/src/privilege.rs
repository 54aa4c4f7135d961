//! Dropping privileges once the probes are attached.
//!
//! Loading and attaching eBPF programs needs CAP_BPF, CAP_PERFMON and (for tracefs, BTF and
//! RLIMIT_MEMLOCK) CAP_SYS_ADMIN / CAP_DAC_READ_SEARCH / CAP_SYS_RESOURCE, or plain root. Once attached,
//! tripline only reads its ring buffer and maps through descriptors it already holds, reads procfs,
//! writes its own state files and serves HTTP on sockets already bound. The one exception is
//! CAP_SYS_PTRACE, used read-only: `/proc/PID/cwd` and `/proc/PID/exe` of other users' processes are
//! behind a ptrace access check (relative file paths are resolved against the writer's cwd; processes
//! older than tripline are identified by their exe). So every other capability is dropped from every
//! set (effective, permitted, inheritable, ambient, bounding) on every thread, and `no_new_privs` is
//! set. A compromise of the running process (an HTTP parser bug, say) gains no CAP_SYS_ADMIN, CAP_BPF,
//! CAP_NET_ADMIN, CAP_SYS_MODULE, CAP_DAC_OVERRIDE, CAP_SETUID, ….
//!
//! Capabilities are per thread in Linux: the drop runs on the calling thread and on each tokio worker
//! (one task per worker, held together by a barrier); threads created afterwards inherit the empty
//! sets. `verify()` reads /proc/self/task/*/status to prove it.
use std::sync::{Arc, Barrier};

use caps::CapSet;

/// What tripline keeps at run time.
pub const RUNTIME_CAPABILITIES: &[caps::Capability] = &[caps::Capability::CAP_SYS_PTRACE];

/// Drops every capability of the calling thread but [`RUNTIME_CAPABILITIES`] and sets `no_new_privs`.
pub fn drop_this_thread() -> Result<(), String> {
    let keep: caps::CapsHashSet = RUNTIME_CAPABILITIES.iter().copied().collect();
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) has no memory arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_NO_NEW_PRIVS: {}",
            std::io::Error::last_os_error()
        ));
    }
    // The bounding set needs CAP_SETPCAP in the effective set: first. Without it (a non-root user
    // with ambient capabilities) it stays; with no_new_privs and empty inheritable/ambient sets no
    // execve can regain anything from it anyway.
    let setpcap =
        caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP).unwrap_or(false);
    for c in caps::all().into_iter().filter(|_| setpcap) {
        if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, c).map_err(|e| format!("bounding set: {e}"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("ambient set: {e}"))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| format!("inheritable set: {e}"))?;
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| e.to_string())?;
    let kept: caps::CapsHashSet = keep.intersection(&permitted).copied().collect();
    caps::set(None, CapSet::Effective, &kept).map_err(|e| format!("effective set: {e}"))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| format!("permitted set: {e}"))?;
    Ok(())
}

/// Drops every capability on this thread and on every tokio worker thread.
pub async fn drop_all() -> Result<(), String> {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let barrier = Arc::new(Barrier::new(workers));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            // Each task holds its worker until all workers hold one: one task per worker thread.
            b.wait();
            drop_this_thread()
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    drop_this_thread()
}

/// Threads of this process that hold more than [`RUNTIME_CAPABILITIES`] (by thread id), from procfs.
pub fn threads_with_capabilities() -> Vec<u32> {
    let allowed: u64 = RUNTIME_CAPABILITIES
        .iter()
        .map(|c| 1u64 << c.index())
        .fold(0, |a, b| a | b);
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: u32 = e.file_name().to_str()?.parse().ok()?;
        let status = std::fs::read_to_string(e.path().join("status")).ok()?;
        let holds = status.lines().any(|l| {
            ["CapEff:", "CapPrm:", "CapAmb:", "CapInh:"]
                .iter()
                .any(|k| {
                    l.strip_prefix(k)
                        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                        .is_some_and(|bits| bits & !allowed != 0)
                })
        });
        holds.then_some(tid)
    })
    .collect()
}
