//! File integrity: writes (open for write/create/truncate), unlink, rename, chmod, chown, link and
//! symlink, on watched path prefixes only.
//!
//! `sys_enter_*` reads the user's path(s) into per-CPU scratch and compares them with the watched
//! prefixes (`WATCH`, filled by userspace); a path outside every prefix costs a counter
//! (`counter::FILE_FILTERED`), not an event. A match is parked per thread until `sys_exit_*` adds the
//! result. Relative paths cannot be judged here: they are sent, and userspace resolves them against the
//! process's cwd or dirfd and filters them.
use core::ptr::{addr_of, read_volatile};

use aya_ebpf::{
    helpers::bpf_probe_read_user_str_bytes,
    macros::map,
    maps::{LruHashMap, PerCpuArray},
    programs::TracePointContext,
};
use tripline_common::{counter, kind, FileEvent, WatchList, WATCH_MAX, WATCH_PREFIX_LEN};

use crate::common::{count, fill_header, is_self, park, probe_pair};

/// Filled by userspace before load.
#[unsafe(no_mangle)]
pub static WATCH: WatchList = unsafe { core::mem::zeroed() };

#[map]
static FILE_SCRATCH: PerCpuArray<FileEvent> = PerCpuArray::with_max_entries(1, 0);

#[map]
static FILE_PENDING: LruHashMap<u64, FileEvent> = LruHashMap::with_max_entries(8192, 0);

/// Where a syscall's arguments are (offsets into the tracepoint record; 0 = absent).
struct Spec {
    kind: u16,
    dfd: usize,
    path: usize,
    path2: usize,
    flags: usize,
    mode: usize,
    uid: usize,
    gid: usize,
    /// open/openat: only opens that can modify (O_WRONLY|O_RDWR|O_CREAT|O_TRUNC).
    write_only: bool,
}

const O_WRITE_MASK: i32 = 0o1 | 0o2 | 0o100 | 0o1000;
const AT_FDCWD: i32 = -100;

#[inline(always)]
fn watched(path: &[u8; 256], len: usize) -> bool {
    if len == 0 {
        return false;
    }
    if path[0] != b'/' {
        return true; // relative: userspace resolves and decides
    }
    let n = unsafe { read_volatile(addr_of!(WATCH.count)) } as usize;
    for i in 0..WATCH_MAX {
        if i >= n {
            break;
        }
        let plen = unsafe { read_volatile(addr_of!(WATCH.lens[i])) } as usize;
        if plen == 0 || plen > WATCH_PREFIX_LEN || plen > len {
            continue;
        }
        let mut same = true;
        for (j, have) in path.iter().take(WATCH_PREFIX_LEN).enumerate() {
            if j >= plen {
                break;
            }
            let want = unsafe { read_volatile(addr_of!(WATCH.prefixes[i][j])) };
            if *have != want {
                same = false;
                break;
            }
        }
        if same {
            return true;
        }
    }
    false
}

#[inline(always)]
fn enter(ctx: &TracePointContext, s: &Spec) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    let flags: i32 = if s.flags != 0 {
        unsafe { ctx.read_at(s.flags)? }
    } else {
        0
    };
    if s.write_only && flags & O_WRITE_MASK == 0 {
        return Ok(());
    }
    let Some(ev) = FILE_SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    unsafe {
        (*ev).flags = flags as u32;
        (*ev).mode = if s.mode != 0 {
            ctx.read_at::<u32>(s.mode)?
        } else {
            0
        };
        (*ev).uid_arg = if s.uid != 0 {
            ctx.read_at::<u32>(s.uid)?
        } else {
            u32::MAX
        };
        (*ev).gid_arg = if s.gid != 0 {
            ctx.read_at::<u32>(s.gid)?
        } else {
            u32::MAX
        };
        (*ev).dirfd = if s.dfd != 0 {
            ctx.read_at::<i32>(s.dfd)?
        } else {
            AT_FDCWD
        };
        (*ev).result = 0;
        let p: *const u8 = ctx.read_at(s.path)?;
        let n = bpf_probe_read_user_str_bytes(p, &mut (*ev).path)
            .map(|b| b.len())
            .unwrap_or(0);
        (*ev).path_len = n as u16;
        let mut n2 = 0;
        if s.path2 != 0 {
            let p2: *const u8 = ctx.read_at(s.path2)?;
            n2 = bpf_probe_read_user_str_bytes(p2, &mut (*ev).path2)
                .map(|b| b.len())
                .unwrap_or(0);
        }
        (*ev).path2_len = n2 as u16;
        if !watched(&(*ev).path, n) && !(n2 > 0 && watched(&(*ev).path2, n2)) {
            count(counter::FILE_FILTERED);
            return Ok(());
        }
        fill_header(
            &raw mut (*ev).header,
            s.kind,
            core::mem::size_of::<FileEvent>(),
        );
        park(&FILE_PENDING, ev);
    }
    Ok(())
}

const NONE: Spec = Spec {
    kind: 0,
    dfd: 0,
    path: 0,
    path2: 0,
    flags: 0,
    mode: 0,
    uid: 0,
    gid: 0,
    write_only: false,
};

// Offsets: syscall arguments start at 16 and are 8 bytes apart (checked against tracefs by userspace).
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_openat,
    sys_exit_openat,
    Spec {
        kind: kind::FILE_WRITE,
        dfd: 16,
        path: 24,
        flags: 32,
        mode: 40,
        write_only: true,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_open,
    sys_exit_open,
    Spec {
        kind: kind::FILE_WRITE,
        path: 16,
        flags: 24,
        mode: 32,
        write_only: true,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_creat,
    sys_exit_creat,
    Spec {
        kind: kind::FILE_WRITE,
        path: 16,
        mode: 24,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_unlinkat,
    sys_exit_unlinkat,
    Spec {
        kind: kind::FILE_UNLINK,
        dfd: 16,
        path: 24,
        flags: 32,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_unlink,
    sys_exit_unlink,
    Spec {
        kind: kind::FILE_UNLINK,
        path: 16,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_renameat2,
    sys_exit_renameat2,
    Spec {
        kind: kind::FILE_RENAME,
        dfd: 16,
        path: 24,
        path2: 40,
        flags: 48,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_renameat,
    sys_exit_renameat,
    Spec {
        kind: kind::FILE_RENAME,
        dfd: 16,
        path: 24,
        path2: 40,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_rename,
    sys_exit_rename,
    Spec {
        kind: kind::FILE_RENAME,
        path: 16,
        path2: 24,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_fchmodat,
    sys_exit_fchmodat,
    Spec {
        kind: kind::FILE_CHMOD,
        dfd: 16,
        path: 24,
        mode: 32,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_chmod,
    sys_exit_chmod,
    Spec {
        kind: kind::FILE_CHMOD,
        path: 16,
        mode: 24,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_fchownat,
    sys_exit_fchownat,
    Spec {
        kind: kind::FILE_CHOWN,
        dfd: 16,
        path: 24,
        uid: 32,
        gid: 40,
        flags: 48,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_chown,
    sys_exit_chown,
    Spec {
        kind: kind::FILE_CHOWN,
        path: 16,
        uid: 24,
        gid: 32,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_lchown,
    sys_exit_lchown,
    Spec {
        kind: kind::FILE_CHOWN,
        path: 16,
        uid: 24,
        gid: 32,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_linkat,
    sys_exit_linkat,
    Spec {
        kind: kind::FILE_LINK,
        dfd: 16,
        path: 24,
        path2: 40,
        flags: 48,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_link,
    sys_exit_link,
    Spec {
        kind: kind::FILE_LINK,
        path: 16,
        path2: 24,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_symlinkat,
    sys_exit_symlinkat,
    Spec {
        kind: kind::FILE_LINK,
        path: 16,
        path2: 32,
        dfd: 24,
        ..NONE
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_symlink,
    sys_exit_symlink,
    Spec {
        kind: kind::FILE_LINK,
        path: 16,
        path2: 24,
        ..NONE
    }
);
