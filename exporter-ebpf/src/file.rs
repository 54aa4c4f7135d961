//! File integrity: writes (open for write/create/truncate), unlink, rename, chmod, chown, link, symlink,
//! truncate and extended attributes on watched files; setid modes and file capabilities anywhere; reads of
//! sensitive files.
//!
//! Three ways to judge a call, cheapest first:
//! * **opens** (`open`, `openat`, `openat2`, `creat`, `open_by_handle_at`) are judged at `sys_exit_*` on
//!   the file the returned fd points to: its canonical path is built from the kernel's dentries and mounts
//!   (`path.rs`) and compared with the watched prefixes, and its (device, inode) is looked up in the inode
//!   map (hard links of watched files; sensitive files, whose *read* opens are `SENSITIVE_READ` events).
//!   Entry only parks the caller's spelling and flags for write opens. A failed open has no file: it is
//!   judged on the spelled path, as before.
//! * **fd-based calls** (`ftruncate`, `fchmod`, `fchown`, `fsetxattr`, `fremovexattr`) resolve the fd at
//!   entry the same way.
//! * **path-based calls** (unlink, rename, chmod, chown, link, symlink, truncate, `fchmodat2`, the xattr
//!   family) compare the spelled path at entry; spellings the kernel cannot judge (relative, with `.` or
//!   `..` components, under `/proc/`) are sent for userspace to canonicalise (`resolve::UNJUDGED`). A
//!   symlinked or bind-mounted *directory* in a path-based call is the documented gap
//!   (docs/file-integrity.md).
//!
//! Regardless of path: a chmod that sets setuid/setgid bits, and setting a `security.capability` xattr.
//! Everything dropped costs a counter (`counter::FILE_FILTERED`), not an event.
use core::ptr::{addr_of, read_volatile};

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, bpf_probe_read_user_str_bytes},
    macros::map,
    maps::{LruHashMap, PerCpuArray},
};
use tripline_common::{
    counter, inode_class, kind, resolve, sc, FileEvent, Syscall, WatchList, PATH_LEN, WATCH_MAX,
};

use crate::common::{
    count, count_lost, count_seen, fill_header, is_self, park, probe_pair, submit_flags, SysArgs,
    EVENTS,
};
use crate::path::{class_of, f_path, file_of_fd, identity, Unresolved};

/// Filled by userspace before load.
#[unsafe(no_mangle)]
pub static WATCH: WatchList = unsafe { core::mem::zeroed() };

#[map]
static FILE_SCRATCH: PerCpuArray<FileEvent> = PerCpuArray::with_max_entries(1, 0);

#[map]
static FILE_PENDING: LruHashMap<u64, FileEvent> = LruHashMap::with_max_entries(4096, 0);

/// An open's arguments, parked per thread from entry to exit (write opens only).
#[derive(Clone, Copy)]
#[repr(C)]
struct OpenArgs {
    path: u64,
    flags: u32,
    mode: u32,
    dirfd: i32,
    op: u32,
}

#[map]
static OPEN_PENDING: LruHashMap<u64, OpenArgs> = LruHashMap::with_max_entries(8192, 0);

/// Where a syscall's arguments are (offsets into the tracepoint record from the ABI table; 0 = absent).
struct Spec {
    kind: u16,
    op: u32,
    dfd: usize,
    path: usize,
    path2: usize,
    flags: usize,
    mode: usize,
    uid: usize,
    gid: usize,
    /// fd-based calls: the fd argument (the path is resolved from it).
    fd: usize,
    /// xattr calls: the attribute name (kept in `path2`, not compared as a path); module loads: the
    /// parameters.
    xattr: usize,
    /// Kept whatever the path (module loads).
    always: bool,
}

const O_WRITE_MASK: i32 = 0o1 | 0o2 | 0o100 | 0o1000;
const AT_FDCWD: i32 = -100;

/// Compares an absolute path (`len` bytes with the NUL, in a buffer of at least `WATCH_PREFIX_LEN` bytes)
/// with the watched prefixes.
#[inline(always)]
fn watched(path: *const u8, len: usize) -> bool {
    if len == 0 {
        return false;
    }
    let n = unsafe { read_volatile(addr_of!(WATCH.count)) } as usize;
    any_prefix(path, n, &WATCH.words, &WATCH.masks)
}

/// Whether a resolved path whose first bytes (`/`, its first component, `/`) are at `head` can still
/// start with a watched prefix (see `WatchList::tops`): checked before the rest of the path is written.
#[inline(always)]
fn top_watched(head: *const u8) -> bool {
    let n = unsafe { read_volatile(addr_of!(WATCH.top_count)) } as usize;
    any_prefix(head, n, &WATCH.tops, &WATCH.top_masks)
}

/// Whether the `W` words at `path` start with one of the first `n` prefixes of a table (`words[i][w] ==
/// path_word[w] & masks[i][w]` for every `w`). The first word settles most prefixes (they differ early),
/// so the others are compared only when it matches, together and without branches.
#[inline(always)]
fn any_prefix<const W: usize>(
    path: *const u8,
    n: usize,
    words: &[[u64; W]; WATCH_MAX],
    masks: &[[u64; W]; WATCH_MAX],
) -> bool {
    let mut have = [0u64; W];
    for (w, word) in have.iter_mut().enumerate() {
        *word = unsafe { core::ptr::read_unaligned(path.add(w * 8) as *const u64) };
    }
    for i in 0..WATCH_MAX {
        if i >= n {
            break;
        }
        let want = |w: usize| unsafe { read_volatile(&words[i][w]) };
        let mask = |w: usize| unsafe { read_volatile(&masks[i][w]) };
        if (have[0] & mask(0)) ^ want(0) != 0 {
            continue;
        }
        let mut diff = 0u64;
        for (w, word) in have.iter().enumerate().skip(1) {
            diff |= (*word & mask(w)) ^ want(w);
        }
        if diff == 0 {
            return true;
        }
    }
    false
}

/// [`watched`] for other hook families (io_uring).
#[inline(always)]
pub fn watched_resolved(path: *const u8, len: usize) -> bool {
    watched(path, len)
}

/// A spelling the in-kernel prefix filter cannot judge: relative, `.`/`..` components, or under /proc
/// (`/proc/self/root/...`). Userspace canonicalises these.
#[inline(always)]
fn unjudged(path: &[u8; PATH_LEN], len: usize) -> bool {
    if len == 0 {
        return false;
    }
    if path[0] != b'/' {
        return true;
    }
    let p = path.as_ptr();
    let word = |w: usize| unsafe { core::ptr::read_unaligned(p.add(w * 8) as *const u64) };
    if word(0) & 0xffff_ffff_ffff == u64::from_le_bytes(*b"/proc/\0\0") {
        return true;
    }
    // "/." followed by '/', '.' or NUL anywhere, eight bytes at a time without branches (SWAR). Bytes after
    // the NUL may give a false positive: userspace then filters exactly.
    let mut hit = 0u64;
    let mut x = word(0);
    for w in 1..PATH_LEN / 8 {
        let nx = word(w);
        let y = (x >> 8) | (nx << 56);
        let z = (x >> 16) | (nx << 48);
        hit |= bytes_eq(x, b'/')
            & bytes_eq(y, b'.')
            & (bytes_eq(z, b'/') | bytes_eq(z, b'.') | zero_bytes(z));
        x = nx;
    }
    hit != 0
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `v` that is zero (and possibly in bytes above one: harmless here).
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGHS
}

#[inline(always)]
fn bytes_eq(v: u64, c: u8) -> u64 {
    zero_bytes(v ^ (ONES * c as u64))
}

const CAPABILITY_XATTR: &[u8; 20] = b"security.capability\0";
const S_ISUID_ISGID: u32 = 0o6000;

#[inline(always)]
fn is_capability(name: &[u8; PATH_LEN], len: usize) -> bool {
    if len != CAPABILITY_XATTR.len() {
        return false;
    }
    for i in 0..CAPABILITY_XATTR.len() {
        if name[i] != CAPABILITY_XATTR[i] {
            return false;
        }
    }
    true
}

/// Resolves `file` into the event: canonical path, identity, inode class. Returns the class.
///
/// `judge`: the caller keeps the event only for a watched inode or path, so a path whose first component
/// starts no watched prefix is not written out (`path_len` 0, neither `KERNEL` nor `FAILED` set): the
/// caller's [`watched`] test of it fails as it would on the whole path.
#[inline(always)]
unsafe fn resolve_file(ev: *mut FileEvent, file: *const u8, judge: bool) -> u32 {
    unsafe {
        let mut class = 0;
        if let Ok(key) = identity(file) {
            (*ev).dev = key.dev;
            (*ev).ino = key.ino;
            class = class_of(&key);
        }
        (*ev).class = class;
        resolve_path(ev, file, judge && class & inode_class::WATCHED == 0);
        class
    }
}

/// The path part of [`resolve_file`] (callers that looked the inode up already): `path`, `path_len` and
/// the `KERNEL`/`FAILED` flags. `filter`: a path whose first component starts no watched prefix is not
/// written out (`path_len` 0, neither flag set).
#[inline(always)]
pub unsafe fn resolve_path(ev: *mut FileEvent, file: *const u8, filter: bool) {
    unsafe {
        let out = (*ev).path.as_mut_ptr();
        let r = crate::path::resolve_if(f_path(file), out, |head| !filter || top_watched(head));
        (*ev).path_len = 0;
        match r {
            Ok((len, flags)) => {
                (*ev).path_len = len;
                (*ev).resolve |= resolve::KERNEL | flags;
            }
            Err(Unresolved::Unwatched) => {}
            Err(Unresolved::Failed) => (*ev).resolve |= resolve::FAILED,
        }
    }
}

#[inline(always)]
fn enter<C: SysArgs>(ctx: &C, s: &Spec) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    let flags: i32 = if s.flags != 0 {
        unsafe { ctx.read_at(s.flags)? }
    } else {
        0
    };
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
        (*ev).op = s.op;
        (*ev).resolve = 0;
        (*ev).spelled_len = 0;
        (*ev).dev = 0;
        (*ev).ino = 0;
        (*ev).class = 0;
        let mut keep = s.always;
        if s.mode != 0 && (*ev).mode & S_ISUID_ISGID != 0 && s.kind == kind::FILE_CHMOD {
            (*ev).resolve |= resolve::SETID_MODE;
            keep = true;
        }
        let mut n2 = 0;
        if s.xattr != 0 {
            let p: *const u8 = ctx.read_at(s.xattr)?;
            n2 = bpf_probe_read_user_str_bytes(p, &mut (*ev).path2)
                .map(|b| b.len() + 1)
                .unwrap_or(0);
            if s.kind == kind::FILE_XATTR && is_capability(&(*ev).path2, n2) {
                (*ev).resolve |= resolve::CAPABILITY;
                keep = true;
            }
        }
        if s.fd != 0 {
            let fd: i32 = ctx.read_at(s.fd)?;
            (*ev).dirfd = fd;
            (*ev).path2_len = n2 as u16;
            match file_of_fd(fd as u64) {
                Ok(file) => {
                    let class = resolve_file(ev, file, !keep);
                    let n = (*ev).path_len as usize;
                    if class & inode_class::WATCHED != 0 {
                        (*ev).resolve |= resolve::BY_INODE;
                        keep = true;
                    }
                    if !keep && !watched((*ev).path.as_ptr(), n) {
                        count(counter::FILE_FILTERED);
                        return Ok(());
                    }
                }
                // Not an open fd: the call fails; reported only when kept whatever the path.
                Err(_) if keep => (*ev).path_len = 0,
                Err(_) => {
                    count(counter::FILE_FILTERED);
                    return Ok(());
                }
            }
        } else if s.path == 0 {
            // No file (init_module: the image is in memory): kept only when `always`.
            if !keep {
                return Ok(());
            }
            (*ev).path_len = 0;
            (*ev).path2_len = n2 as u16;
        } else {
            let p: *const u8 = ctx.read_at(s.path)?;
            let n = bpf_probe_read_user_str_bytes(p, &mut (*ev).spelled)
                .map(|b| b.len() + 1)
                .unwrap_or(0);
            // Path-based: the spelled path is the path (copied into `path` below).
            if s.path2 != 0 {
                let p2: *const u8 = ctx.read_at(s.path2)?;
                n2 = bpf_probe_read_user_str_bytes(p2, &mut (*ev).path2)
                    .map(|b| b.len() + 1)
                    .unwrap_or(0);
            }
            (*ev).path2_len = n2 as u16;
            let path2_is_path = s.path2 != 0;
            let spelled = &(*ev).spelled;
            if unjudged(spelled, n) || (path2_is_path && unjudged(&(*ev).path2, n2)) {
                (*ev).resolve |= resolve::UNJUDGED;
                keep = true;
            }
            if !keep
                && !watched(spelled.as_ptr(), n)
                && !(path2_is_path && n2 > 0 && watched((*ev).path2.as_ptr(), n2))
            {
                count(counter::FILE_FILTERED);
                return Ok(());
            }
            copy_spelled(ev, n);
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

/// Moves the spelled path into `path` (path-based calls, failed opens).
#[inline(always)]
unsafe fn copy_spelled(ev: *mut FileEvent, n: usize) {
    unsafe {
        core::ptr::copy_nonoverlapping((*ev).spelled.as_ptr(), (*ev).path.as_mut_ptr(), PATH_LEN);
        (*ev).path_len = n as u16;
        (*ev).spelled_len = 0;
    }
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
        fd: 0,
        xattr: 0,
        always: false,
        op: sc.op,
    }
}

// Offsets come from `tripline_common::sc`, the table userspace checks against tracefs before attach.
// Opens: entry parks the spelling of write opens; exit judges the file behind the fd.

/// Where an open's arguments are. `how`: openat2's `struct open_how *` (flags and mode are read from it).
struct OpenSpec {
    sc: Syscall,
    dfd: usize,
    path: usize,
    flags: usize,
    mode: usize,
    how: usize,
    /// creat: always a write.
    always_write: bool,
}

const fn open_spec(sc: Syscall) -> OpenSpec {
    OpenSpec {
        sc,
        dfd: 0,
        path: 0,
        flags: 0,
        mode: 0,
        how: 0,
        always_write: false,
    }
}

/// Reads an open's arguments into `a`; whether it opens for writing (only those are judged by path).
#[inline(always)]
fn open_args<C: SysArgs>(ctx: &C, s: &OpenSpec, a: &mut OpenArgs) -> Result<bool, i32> {
    let (flags, mode) = if s.how != 0 {
        let how: *const u64 = unsafe { ctx.read_at(s.how)? };
        let f = unsafe { bpf_probe_read_user(how)? };
        let m = unsafe { bpf_probe_read_user(how.add(1))? };
        (f as u32, m as u32)
    } else {
        let f = if s.flags != 0 {
            unsafe { ctx.read_at::<u32>(s.flags)? }
        } else {
            0
        };
        let m = if s.mode != 0 {
            unsafe { ctx.read_at::<u32>(s.mode)? }
        } else {
            0
        };
        (f, m)
    };
    if !s.always_write && flags & O_WRITE_MASK as u32 == 0 {
        return Ok(false);
    }
    a.path = if s.path != 0 {
        unsafe { ctx.read_at::<u64>(s.path)? }
    } else {
        0
    };
    a.flags = flags;
    a.mode = mode;
    a.dirfd = if s.dfd != 0 {
        unsafe { ctx.read_at::<i32>(s.dfd)? }
    } else {
        AT_FDCWD
    };
    a.op = s.sc.op;
    Ok(true)
}

/// Whether the exit reads the open's arguments itself (from the dispatcher's registers) instead of taking
/// them from entry (`Syscall::exit_reads_args`, which the dispatcher also reads: it does not run these
/// entries at all). Not openat2: its flags are in user memory (`struct open_how`).
#[inline(always)]
const fn args_at_exit<C: SysArgs>(s: &OpenSpec) -> bool {
    C::ARGS_AT_EXIT && s.sc.exit_reads_args()
}

/// Entry: parks a write open's arguments for the exit, unless the exit reads them itself (then the
/// dispatcher does not come here).
#[inline(always)]
fn open_enter<C: SysArgs>(ctx: &C, s: &OpenSpec) -> Result<(), i32> {
    if args_at_exit::<C>(s) || is_self() {
        return Ok(());
    }
    let mut args = OpenArgs {
        path: 0,
        flags: 0,
        mode: 0,
        dirfd: AT_FDCWD,
        op: 0,
    };
    if !open_args(ctx, s, &mut args)? {
        return Ok(());
    }
    if OPEN_PENDING
        .insert(bpf_get_current_pid_tgid(), args, 0)
        .is_err()
    {
        count(counter::PENDING_FULL);
    }
    Ok(())
}

#[inline(always)]
fn open_exit<C: SysArgs>(ctx: &C, s: &OpenSpec) -> Result<(), i32> {
    // Built field by field: an `Option<OpenArgs>` copy leaves uninitialised registers the verifier refuses.
    let mut a = OpenArgs {
        path: 0,
        flags: 0,
        mode: 0,
        dirfd: AT_FDCWD,
        op: 0,
    };
    let mut parked = false;
    if args_at_exit::<C>(s) {
        // The dispatcher's registers: the arguments as the call used them, no map round trip. (The
        // dispatcher never runs this for tripline's own calls.)
        parked = open_args(&ctx.with_abi(), s, &mut a)?;
    } else {
        let key = bpf_get_current_pid_tgid();
        if let Some(p) = unsafe { OPEN_PENDING.get(key) } {
            a.path = p.path;
            a.flags = p.flags;
            a.mode = p.mode;
            a.dirfd = p.dirfd;
            a.op = p.op;
            parked = true;
            let _ = OPEN_PENDING.remove(key);
        }
    }
    let ret = ctx.ret();
    if ret < 0 && !parked {
        return Ok(());
    }
    if is_self() {
        return Ok(());
    }
    let Some(ev) = FILE_SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    unsafe {
        (*ev).resolve = 0;
        (*ev).path2_len = 0;
        (*ev).spelled_len = 0;
        (*ev).dev = 0;
        (*ev).ino = 0;
        (*ev).class = 0;
        (*ev).uid_arg = u32::MAX;
        (*ev).gid_arg = u32::MAX;
        (*ev).result = ret;
        let kind = if ret < 0 {
            // No file: judge the spelling, as before kernel resolution.
            let n = read_spelled(ev, a.path);
            let odd = unjudged(&(*ev).spelled, n);
            if !odd && !watched((*ev).spelled.as_ptr(), n) {
                count(counter::FILE_FILTERED);
                return Ok(());
            }
            if odd {
                (*ev).resolve |= resolve::UNJUDGED;
            }
            copy_spelled(ev, n);
            kind::FILE_WRITE
        } else {
            let Ok(file) = file_of_fd(ret as u64) else {
                return Ok(());
            };
            if parked {
                let class = resolve_file(ev, file, true);
                let mut keep = class & inode_class::WATCHED != 0;
                if keep {
                    (*ev).resolve |= resolve::BY_INODE;
                }
                if !keep && (*ev).resolve & resolve::KERNEL != 0 {
                    keep = watched((*ev).path.as_ptr(), (*ev).path_len as usize);
                }
                if !keep {
                    // Outside the watched paths, or unresolvable (counted in `RESOLVE_FAILED`).
                    count(counter::FILE_FILTERED);
                    return Ok(());
                }
                kind::FILE_WRITE
            } else {
                // A read open: only sensitive inodes are reported.
                let Ok(id) = identity(file) else {
                    return Ok(());
                };
                let class = class_of(&id);
                if class & inode_class::SENSITIVE_MASK == 0 {
                    return Ok(());
                }
                resolve_file(ev, file, false);
                (*ev).flags = 0;
                (*ev).mode = 0;
                (*ev).dirfd = AT_FDCWD;
                (*ev).op = 0;
                kind::SENSITIVE_READ
            }
        };
        if parked {
            (*ev).flags = a.flags;
            (*ev).mode = a.mode;
            (*ev).dirfd = a.dirfd;
            (*ev).op = a.op;
            if (*ev).resolve & resolve::KERNEL != 0 {
                (*ev).spelled_len = read_spelled(ev, a.path) as u16;
            }
        }
        fill_header(
            &raw mut (*ev).header,
            kind,
            core::mem::size_of::<FileEvent>(),
        );
        output(ev, kind);
    }
    Ok(())
}

/// Reads the caller's spelling of a path into `spelled`; its length with the NUL (0 when unreadable).
#[inline(always)]
unsafe fn read_spelled(ev: *mut FileEvent, p: u64) -> usize {
    if p == 0 {
        return 0;
    }
    unsafe {
        bpf_probe_read_user_str_bytes(p as *const u8, &mut (*ev).spelled)
            .map(|b| b.len() + 1)
            .unwrap_or(0)
    }
}

/// Sends a finished event from scratch.
#[inline(always)]
pub unsafe fn output(ev: *const FileEvent, kind: u16) {
    count_seen(kind);
    if EVENTS
        .output::<FileEvent>(unsafe { &*ev }, submit_flags())
        .is_err()
    {
        count_lost(kind);
    }
}

macro_rules! open_probe {
    ($name:ident, $spec:expr) => {
        // Arguments in user memory are read at entry (see `args_at_exit`).
        const _: () = assert!($spec.how == 0 || !$spec.sc.exit_reads_args());
        crate::common::syscall_programs!($name, |ctx| open_enter(ctx, &const { $spec }), |ctx| {
            open_exit(ctx, &const { $spec })
        });
    };
}

open_probe!(openat, {
    let s = sc::OPENAT;
    OpenSpec {
        dfd: s.arg("dfd"),
        path: s.arg("filename"),
        flags: s.arg("flags"),
        mode: s.arg("mode"),
        ..open_spec(s)
    }
});
open_probe!(open, {
    let s = sc::OPEN;
    OpenSpec {
        path: s.arg("filename"),
        flags: s.arg("flags"),
        mode: s.arg("mode"),
        ..open_spec(s)
    }
});
open_probe!(creat, {
    let s = sc::CREAT;
    OpenSpec {
        path: s.arg("pathname"),
        mode: s.arg("mode"),
        always_write: true,
        ..open_spec(s)
    }
});
open_probe!(openat2, {
    let s = sc::OPENAT2;
    OpenSpec {
        dfd: s.arg("dfd"),
        path: s.arg("filename"),
        how: s.arg("how"),
        ..open_spec(s)
    }
});
open_probe!(open_by_handle_at, {
    let s = sc::OPEN_BY_HANDLE_AT;
    OpenSpec {
        dfd: s.arg("mountdirfd"),
        flags: s.arg("flags"),
        ..open_spec(s)
    }
});

// fd-based calls: the fd is resolved at entry.
probe_pair!(enter, FILE_PENDING, ftruncate, {
    let s = sc::FTRUNCATE;
    Spec {
        fd: s.arg("fd"),
        ..spec(s, "fd")
    }
});
probe_pair!(enter, FILE_PENDING, fchmod, {
    let s = sc::FCHMOD;
    Spec {
        fd: s.arg("fd"),
        mode: s.arg("mode"),
        ..spec(s, "fd")
    }
});
probe_pair!(enter, FILE_PENDING, fchown, {
    let s = sc::FCHOWN;
    Spec {
        fd: s.arg("fd"),
        uid: s.arg("user"),
        gid: s.arg("group"),
        ..spec(s, "fd")
    }
});
probe_pair!(enter, FILE_PENDING, fsetxattr, {
    let s = sc::FSETXATTR;
    Spec {
        fd: s.arg("fd"),
        xattr: s.arg("name"),
        flags: s.arg("flags"),
        ..spec(s, "fd")
    }
});
probe_pair!(enter, FILE_PENDING, fremovexattr, {
    let s = sc::FREMOVEXATTR;
    Spec {
        fd: s.arg("fd"),
        xattr: s.arg("name"),
        ..spec(s, "fd")
    }
});

// Path-based calls new with kernel resolution.
probe_pair!(enter, FILE_PENDING, truncate, spec(sc::TRUNCATE, "path"));
probe_pair!(enter, FILE_PENDING, fchmodat2, {
    let s = sc::FCHMODAT2;
    Spec {
        dfd: s.arg("dfd"),
        mode: s.arg("mode"),
        flags: s.arg("flags"),
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, setxattr, {
    let s = sc::SETXATTR;
    Spec {
        xattr: s.arg("name"),
        flags: s.arg("flags"),
        ..spec(s, "pathname")
    }
});
probe_pair!(enter, FILE_PENDING, lsetxattr, {
    let s = sc::LSETXATTR;
    Spec {
        xattr: s.arg("name"),
        flags: s.arg("flags"),
        ..spec(s, "pathname")
    }
});
probe_pair!(enter, FILE_PENDING, removexattr, {
    let s = sc::REMOVEXATTR;
    Spec {
        xattr: s.arg("name"),
        ..spec(s, "pathname")
    }
});
probe_pair!(enter, FILE_PENDING, lremovexattr, {
    let s = sc::LREMOVEXATTR;
    Spec {
        xattr: s.arg("name"),
        ..spec(s, "pathname")
    }
});
probe_pair!(enter, FILE_PENDING, unlinkat, {
    let s = sc::UNLINKAT;
    Spec {
        dfd: s.arg("dfd"),
        flags: s.arg("flag"),
        ..spec(s, "pathname")
    }
});
probe_pair!(enter, FILE_PENDING, unlink, spec(sc::UNLINK, "pathname"));
probe_pair!(enter, FILE_PENDING, renameat2, {
    let s = sc::RENAMEAT2;
    Spec {
        dfd: s.arg("olddfd"),
        path2: s.arg("newname"),
        flags: s.arg("flags"),
        ..spec(s, "oldname")
    }
});
probe_pair!(enter, FILE_PENDING, renameat, {
    let s = sc::RENAMEAT;
    Spec {
        dfd: s.arg("olddfd"),
        path2: s.arg("newname"),
        ..spec(s, "oldname")
    }
});
probe_pair!(enter, FILE_PENDING, rename, {
    let s = sc::RENAME;
    Spec {
        path2: s.arg("newname"),
        ..spec(s, "oldname")
    }
});
probe_pair!(enter, FILE_PENDING, fchmodat, {
    let s = sc::FCHMODAT;
    Spec {
        dfd: s.arg("dfd"),
        mode: s.arg("mode"),
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, chmod, {
    let s = sc::CHMOD;
    Spec {
        mode: s.arg("mode"),
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, fchownat, {
    let s = sc::FCHOWNAT;
    Spec {
        dfd: s.arg("dfd"),
        uid: s.arg("user"),
        gid: s.arg("group"),
        flags: s.arg("flag"),
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, chown, {
    let s = sc::CHOWN;
    Spec {
        uid: s.arg("user"),
        gid: s.arg("group"),
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, lchown, {
    let s = sc::LCHOWN;
    Spec {
        uid: s.arg("user"),
        gid: s.arg("group"),
        ..spec(s, "filename")
    }
});
probe_pair!(enter, FILE_PENDING, linkat, {
    let s = sc::LINKAT;
    Spec {
        dfd: s.arg("olddfd"),
        path2: s.arg("newname"),
        flags: s.arg("flags"),
        ..spec(s, "oldname")
    }
});
probe_pair!(enter, FILE_PENDING, link, {
    let s = sc::LINK;
    Spec {
        path2: s.arg("newname"),
        ..spec(s, "oldname")
    }
});
probe_pair!(enter, FILE_PENDING, symlinkat, {
    let s = sc::SYMLINKAT;
    Spec {
        dfd: s.arg("newdfd"),
        path2: s.arg("newname"),
        ..spec(s, "oldname")
    }
});
probe_pair!(enter, FILE_PENDING, symlink, {
    let s = sc::SYMLINK;
    Spec {
        path2: s.arg("newname"),
        ..spec(s, "oldname")
    }
});

// Kernel module loads, kept whatever the path: finit_module's file is resolved from its fd; init_module
// has only an image in memory. Both report the parameters.
probe_pair!(enter, FILE_PENDING, finit_module, {
    let s = sc::FINIT_MODULE;
    Spec {
        fd: s.arg("fd"),
        xattr: s.arg("uargs"),
        flags: s.arg("flags"),
        always: true,
        ..spec(s, "fd")
    }
});
probe_pair!(enter, FILE_PENDING, init_module, {
    let s = sc::INIT_MODULE;
    Spec {
        path: 0,
        xattr: s.arg("uargs"),
        always: true,
        ..spec(s, "umod")
    }
});
