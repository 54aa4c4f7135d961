//! Kernel-resolved paths: the canonical path of an open file (or of a `struct path`) built from the kernel's
//! own objects, never from the string the caller passed, and the file's identity (device, inode).
//!
//! The walk follows `dentry->d_parent` up to the root of the file's filesystem, then crosses to the mount
//! point (`mount->mnt_mountpoint` in `mount->mnt_parent`) and goes on, like the kernel's `d_path`, with
//! two differences:
//! * it walks *past* the root of a bind mount of a subtree: when it reaches the caller's root directory
//!   (`current->fs->root`) or the namespace's root, the path is the file's path in that filesystem, so
//!   `mount --bind /etc /mnt/x` and a write to `/mnt/x/passwd` resolve to `/etc/passwd`. Bind mounts of
//!   other filesystems resolve through the bind's mount point, as `d_path` does;
//! * it is bounded: at most [`RESOLVE_DEPTH`] components (counted in `counter::RESOLVE_TOO_DEEP` when
//!   exceeded) and about [`RESOLVED_PATH_MAX`] bytes (`counter::RESOLVE_TOO_LONG`, flagged on the event).
//!
//! Paths are relative to the root of the mount namespace the file's mount belongs to (a containerised
//! process's file resolves inside its container's root), and a chroot does not shorten them.
//! `bpf_d_path` is not allowed from tracepoints, so the walk is done here with `bpf_probe_read_kernel`
//! and `struct` offsets from BTF (`KernelOffsets`, rows in `tripline_common::KERNEL_OFFSET_SOURCES`).
use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    helpers::generated::bpf_probe_read_kernel_str,
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use tripline_common::{
    counter, flags, resolve, InodeKey, RESOLVED_BUF, RESOLVED_PATH_MAX, RESOLVE_DEPTH,
};

use crate::common::{count, current_task, off, offsets_valid, read_at, read_pair, read_ptr};

/// Dentry names collected bottom-up by the walk, written top-down afterwards, and the walk's counters.
/// The counters live here, not in registers, on purpose: a value loaded from a map is unknown to the
/// verifier, so the states of different paths through the loop are equal and pruned; kept in registers,
/// every (iteration, count) pair is a new state and verification explodes.
#[repr(C)]
pub struct Walk {
    names: [u64; RESOLVE_DEPTH],
    n: u32,
    /// `n` when the walk passed the current mount's root (`u32::MAX`: not yet).
    at_mnt_root: u32,
    pos: u32,
    _pad: u32,
}

#[map]
static WALK: PerCpuArray<Walk> = PerCpuArray::with_max_entries(1, 0);

/// Watched and sensitive inodes, fed by userspace (`probes/inodes.rs`): value bits in
/// `tripline_common::inode_class`.
#[map]
pub static INODES: HashMap<InodeKey, u32> = HashMap::with_max_entries(65536, 0);

const _: () = assert!(RESOLVE_DEPTH.is_power_of_two());
const _: () = assert!(RESOLVED_PATH_MAX.is_power_of_two() && RESOLVED_BUF >= 2 * RESOLVED_PATH_MAX);

/// `FMODE_WRITE` in `file->f_mode`.
pub const FMODE_WRITE: u32 = 0x2;

/// `current->files->fdt->fd[fd]`.
#[inline(always)]
pub unsafe fn file_of_fd(fd: u64) -> Result<*const u8, i32> {
    unsafe {
        let files = read_ptr(current_task(), off!(task_files))?;
        let fdt = read_ptr(files, off!(files_fdt))?;
        let (max_fds, fds) =
            read_pair::<u32, *const u8>(fdt, off!(fdtable_max_fds), off!(fdtable_fd))?;
        if fd >= max_fds as u64 {
            return Err(-1);
        }
        let file = read_ptr(fds, (fd as usize) * 8)?;
        if file.is_null() {
            return Err(-1);
        }
        Ok(file)
    }
}

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;

/// Whether `fd` of the caller is a socket (`file->f_inode->i_mode`).
#[inline(always)]
pub fn is_socket(fd: u64) -> bool {
    if !offsets_valid() {
        return false;
    }
    unsafe {
        let Ok(file) = file_of_fd(fd) else {
            return false;
        };
        let Ok(inode) = read_ptr(file, off!(file_f_inode)) else {
            return false;
        };
        read_at::<u16>(inode, off!(inode_i_mode)).is_ok_and(|m| m & S_IFMT == S_IFSOCK)
    }
}

/// The caller's stdin/stdout as header flags (`flags::STDIO_CHECKED` and which of fds 0 and 1 are
/// sockets); nothing without kernel offsets, so userspace asks procfs instead.
#[inline(always)]
pub fn stdio_flags() -> u16 {
    if !offsets_valid() {
        return 0;
    }
    let mut f = flags::STDIO_CHECKED;
    if is_socket(0) {
        f |= flags::STDIN_SOCKET;
    }
    if is_socket(1) {
        f |= flags::STDOUT_SOCKET;
    }
    f
}

/// The open file's `struct path *` (`&file->f_path`).
#[inline(always)]
pub fn f_path(file: *const u8) -> *const u8 {
    unsafe { file.add(off!(file_f_path)) }
}

/// `file->f_mode`.
#[inline(always)]
pub unsafe fn f_mode(file: *const u8) -> Result<u32, i32> {
    unsafe { read_at::<u32>(file, off!(file_f_mode)) }
}

/// The file's identity: `file->f_inode->i_sb->s_dev` and `->i_ino`.
#[inline(always)]
pub unsafe fn identity(file: *const u8) -> Result<InodeKey, i32> {
    unsafe {
        let inode = read_ptr(file, off!(file_f_inode))?;
        let (ino, sb) = read_pair::<u64, *const u8>(inode, off!(inode_i_ino), off!(inode_i_sb))?;
        let dev = read_at::<u32>(sb, off!(sb_s_dev))?;
        Ok(InodeKey { dev, _pad: 0, ino })
    }
}

/// The inode map's class bits for `key` (0 = not in the map).
#[inline(always)]
pub fn class_of(key: &InodeKey) -> u32 {
    unsafe { INODES.get(key) }.copied().unwrap_or(0)
}

/// `struct mount *` around a `struct vfsmount *` (`container_of(vfsmnt, struct mount, mnt)`).
#[inline(always)]
fn mount_of(vfsmnt: *const u8) -> *const u8 {
    (vfsmnt as usize).wrapping_sub(off!(mount_mnt)) as *const u8
}

/// The root dentry of the top mount above `mnt` (the namespace's root mount).
#[inline(always)]
unsafe fn top_root(mnt: *const u8) -> Result<*const u8, i32> {
    let mut m = mnt;
    for _ in 0..16 {
        let parent = unsafe { read_ptr(m, off!(mount_mnt_parent))? };
        if parent == m {
            break;
        }
        m = parent;
    }
    unsafe { read_ptr(m, off!(mount_mnt) + off!(vfsmount_mnt_root)) }
}

/// Why [`resolve_if`] wrote no path.
pub enum Unresolved {
    /// A kernel read failed or the walk was too deep (both counted).
    Failed,
    /// The path's first component ruled it out (not counted: the caller counts what it filters).
    Unwatched,
}

/// Writes the canonical path of `path` (a `struct path *`) into `out` (`RESOLVED_BUF` bytes,
/// NUL-terminated). Returns the length with the NUL and the `resolve::*` flags to add; `Err` when a
/// kernel read failed or the walk was too deep (both counted).
#[inline(always)]
pub unsafe fn resolve(path: *const u8, out: *mut u8) -> Result<(u16, u16), ()> {
    unsafe { resolve_if(path, out, |_| true) }.map_err(|_| ())
}

/// [`resolve`], but stops once the first component is written when `keep(out)` says the path cannot be
/// one the caller wants (`out` then holds `/`, that component and `/`; bytes after them are stale). The
/// walk runs bottom-up, so the first component is known only at the top; what is saved is writing out
/// (and then comparing) the rest.
#[inline(always)]
pub unsafe fn resolve_if(
    path: *const u8,
    out: *mut u8,
    keep: impl Fn(*const u8) -> bool,
) -> Result<(u16, u16), Unresolved> {
    if !offsets_valid() {
        return Err(Unresolved::Failed);
    }
    match unsafe { walk(path, out, keep) } {
        Ok(r) => Ok(r),
        Err(UNWATCHED) => Err(Unresolved::Unwatched),
        Err(e) => {
            count(if e == TOO_DEEP {
                counter::RESOLVE_TOO_DEEP
            } else {
                counter::RESOLVE_FAILED
            });
            Err(Unresolved::Failed)
        }
    }
}

const TOO_DEEP: i32 = -1000;
const UNWATCHED: i32 = -1001;

#[inline(always)]
unsafe fn walk(
    path: *const u8,
    out: *mut u8,
    keep: impl Fn(*const u8) -> bool,
) -> Result<(u16, u16), i32> {
    let w = WALK.get_ptr_mut(0).ok_or(-1)?;
    let (mut dentry, vfsmnt) =
        unsafe { read_pair::<*const u8, *const u8>(path, off!(path_dentry), off!(path_mnt))? };
    let mut mnt = mount_of(vfsmnt);
    let mut mnt_root = unsafe { read_ptr(vfsmnt, off!(vfsmount_mnt_root))? };
    // The caller's root directory (`current->fs->root`) and the namespace's root dentry: a walk that
    // reaches either (even above a bind mount's root) is done.
    let ns_root = unsafe { top_root(mnt)? };
    let proc_root = unsafe {
        let fs = read_ptr(current_task(), off!(task_fs))?;
        read_ptr(fs, off!(fs_root) + off!(path_dentry))?
    };
    let name_off = off!(dentry_d_name) + off!(qstr_name);
    unsafe {
        write_volatile(&raw mut (*w).n, 0);
        write_volatile(&raw mut (*w).at_mnt_root, u32::MAX);
    }
    let mut done = false;
    for _ in 0..RESOLVE_DEPTH + 8 {
        if dentry == ns_root || dentry == proc_root {
            done = true;
            break;
        }
        let n = unsafe { read_volatile(&raw const (*w).n) };
        if dentry == mnt_root && unsafe { read_volatile(&raw const (*w).at_mnt_root) } == u32::MAX {
            unsafe { write_volatile(&raw mut (*w).at_mnt_root, n) };
        }
        let (parent, name) =
            unsafe { read_pair::<*const u8, u64>(dentry, off!(dentry_d_parent), name_off)? };
        if parent == dentry {
            // The root of this filesystem, not the namespace's: cross to the mount point. Above the root of
            // a bind mount of a subtree of another filesystem, first drop the names collected above it.
            let (mparent, mountpoint) = unsafe {
                read_pair::<*const u8, *const u8>(
                    mnt,
                    off!(mount_mnt_parent),
                    off!(mount_mnt_mountpoint),
                )?
            };
            if mparent == mnt {
                done = true;
                break;
            }
            let at = unsafe { read_volatile(&raw const (*w).at_mnt_root) };
            if mnt_root != dentry && at != u32::MAX {
                unsafe { write_volatile(&raw mut (*w).n, at) };
            }
            dentry = mountpoint;
            mnt = mparent;
            mnt_root = unsafe { read_ptr(mnt, off!(mount_mnt) + off!(vfsmount_mnt_root))? };
            unsafe { write_volatile(&raw mut (*w).at_mnt_root, u32::MAX) };
            continue;
        }
        if n as usize >= RESOLVE_DEPTH {
            break;
        }
        unsafe {
            (*w).names[n as usize & (RESOLVE_DEPTH - 1)] = name;
            write_volatile(&raw mut (*w).n, n + 1);
        }
        dentry = parent;
    }
    if !done {
        return Err(TOO_DEEP);
    }
    let mut flags = 0u16;
    let n = unsafe { read_volatile(&raw const (*w).n) } as usize;
    if n == 0 {
        unsafe {
            *out = b'/';
            *out.add(1) = 0;
        }
        return Ok((2, flags));
    }
    unsafe { write_volatile(&raw mut (*w).pos, 0) };
    for i in 0..RESOLVE_DEPTH {
        if i >= n {
            break;
        }
        let pos = unsafe { read_volatile(&raw const (*w).pos) } as usize;
        if pos >= RESOLVED_PATH_MAX {
            flags |= resolve::TRUNCATED;
            count(counter::RESOLVE_TOO_LONG);
            break;
        }
        let name = unsafe { (*w).names[(n - 1 - i) & (RESOLVE_DEPTH - 1)] };
        let slash = pos & (RESOLVED_PATH_MAX - 1);
        unsafe { *out.add(slash) = b'/' };
        if i == 1 && !keep(out) {
            return Err(UNWATCHED);
        }
        let at = slash + 1;
        let r = unsafe {
            bpf_probe_read_kernel_str(
                out.add(at) as *mut _,
                RESOLVED_PATH_MAX as u32,
                name as *const _,
            )
        };
        if r <= 0 {
            return Err(-1);
        }
        let next = if r as usize >= RESOLVED_PATH_MAX {
            at + RESOLVED_PATH_MAX - 1
        } else {
            at + (r as usize & (RESOLVED_PATH_MAX - 1)) - 1
        };
        unsafe { write_volatile(&raw mut (*w).pos, next as u32) };
    }
    let end = unsafe { read_volatile(&raw const (*w).pos) } as usize & (RESOLVED_BUF - 1);
    unsafe { *out.add(end) = 0 };
    Ok(((end + 1) as u16, flags))
}

/// The current working directory's `struct path *` (`&current->fs->pwd`).
#[inline(always)]
pub unsafe fn pwd() -> Result<*const u8, i32> {
    let fs = unsafe { read_ptr(current_task(), off!(task_fs))? };
    Ok(unsafe { fs.add(off!(fs_pwd)) })
}
