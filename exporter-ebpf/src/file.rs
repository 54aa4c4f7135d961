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
use tripline_common::{counter, sc, FileEvent, Syscall, WatchList, WATCH_MAX, WATCH_PREFIX_LEN};

use crate::common::{count, fill_header, is_self, park, probe_pair};

/// Filled by userspace before load.
#[unsafe(no_mangle)]
pub static WATCH: WatchList = unsafe { core::mem::zeroed() };

#[map]
static FILE_SCRATCH: PerCpuArray<FileEvent> = PerCpuArray::with_max_entries(1, 0);

#[map]
static FILE_PENDING: LruHashMap<u64, FileEvent> = LruHashMap::with_max_entries(8192, 0);

/// Where a syscall's arguments are (offsets into the tracepoint record from the ABI table; 0 = absent).
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

/// A spec reading `path` (and nothing else yet) of syscall `sc`; fields are added with struct update.
const fn spec(sc: Syscall, path: &str) -> Spec {
    Spec {
        kind: sc.kind,
        dfd: 0,
        path: sc.arg(path),
        path2: 0,
        flags: 0,
        mode: 0,
        uid: 0,
        gid: 0,
        write_only: false,
    }
}

// Offsets come from `tripline_common::sc`, the table userspace checks against tracefs before attach.
probe_pair!(enter, FILE_PENDING, sys_enter_openat, sys_exit_openat, {
    let s = sc::OPENAT;
    Spec {
        dfd: s.arg("dfd"),
        flags: s.arg("flags"),
        mode: s.arg("mode"),
        write_only: true,
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, sys_enter_open, sys_exit_open, {
    let s = sc::OPEN;
    Spec {
        flags: s.arg("flags"),
        mode: s.arg("mode"),
        write_only: true,
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, sys_enter_creat, sys_exit_creat, {
    let s = sc::CREAT;
    Spec {
        mode: s.arg("mode"),
        ..spec(s, "pathname")
    }
});
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_unlinkat,
    sys_exit_unlinkat,
    {
        let s = sc::UNLINKAT;
        Spec {
            dfd: s.arg("dfd"),
            flags: s.arg("flag"),
            ..spec(s, "pathname")
        }
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_unlink,
    sys_exit_unlink,
    spec(sc::UNLINK, "pathname")
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_renameat2,
    sys_exit_renameat2,
    {
        let s = sc::RENAMEAT2;
        Spec {
            dfd: s.arg("olddfd"),
            path2: s.arg("newname"),
            flags: s.arg("flags"),
            ..spec(s, "oldname")
        }
    }
);
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_renameat,
    sys_exit_renameat,
    {
        let s = sc::RENAMEAT;
        Spec {
            dfd: s.arg("olddfd"),
            path2: s.arg("newname"),
            ..spec(s, "oldname")
        }
    }
);
probe_pair!(enter, FILE_PENDING, sys_enter_rename, sys_exit_rename, {
    let s = sc::RENAME;
    Spec {
        path2: s.arg("newname"),
        ..spec(s, "oldname")
    }
});
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_fchmodat,
    sys_exit_fchmodat,
    {
        let s = sc::FCHMODAT;
        Spec {
            dfd: s.arg("dfd"),
            mode: s.arg("mode"),
            ..spec(s, "filename")
        }
    }
);
probe_pair!(enter, FILE_PENDING, sys_enter_chmod, sys_exit_chmod, {
    let s = sc::CHMOD;
    Spec {
        mode: s.arg("mode"),
        ..spec(s, "filename")
    }
});
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_fchownat,
    sys_exit_fchownat,
    {
        let s = sc::FCHOWNAT;
        Spec {
            dfd: s.arg("dfd"),
            uid: s.arg("user"),
            gid: s.arg("group"),
            flags: s.arg("flag"),
            ..spec(s, "filename")
        }
    }
);
probe_pair!(enter, FILE_PENDING, sys_enter_chown, sys_exit_chown, {
    let s = sc::CHOWN;
    Spec {
        uid: s.arg("user"),
        gid: s.arg("group"),
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, sys_enter_lchown, sys_exit_lchown, {
    let s = sc::LCHOWN;
    Spec {
        uid: s.arg("user"),
        gid: s.arg("group"),
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, sys_enter_linkat, sys_exit_linkat, {
    let s = sc::LINKAT;
    Spec {
        dfd: s.arg("olddfd"),
        path2: s.arg("newname"),
        flags: s.arg("flags"),
        ..spec(s, "oldname")
    }
});
probe_pair!(enter, FILE_PENDING, sys_enter_link, sys_exit_link, {
    let s = sc::LINK;
    Spec {
        path2: s.arg("newname"),
        ..spec(s, "oldname")
    }
});
probe_pair!(
    enter,
    FILE_PENDING,
    sys_enter_symlinkat,
    sys_exit_symlinkat,
    {
        let s = sc::SYMLINKAT;
        Spec {
            dfd: s.arg("newdfd"),
            path2: s.arg("newname"),
            ..spec(s, "oldname")
        }
    }
);
probe_pair!(enter, FILE_PENDING, sys_enter_symlink, sys_exit_symlink, {
    let s = sc::SYMLINK;
    Spec {
        path2: s.arg("newname"),
        ..spec(s, "oldname")
    }
});
