//! File family: writes, unlink, rename, chmod, chown, link, symlink, truncate and xattrs on watched paths,
//! setid modes and file capabilities anywhere, and sensitive reads (`exporter-ebpf/src/file.rs`,
//! `exporter-ebpf/src/io_uring.rs`). Opens and fd-based calls carry the kernel-resolved path; spellings
//! the kernel could not judge are canonicalised in `enrich::filewatch`.
use tripline_common::{
    inode_class, io_uring_op, resolve, syscall_by_op, FileEvent, SensitiveClass, PATH_LEN,
    RESOLVED_BUF,
};

use super::{c_string, checked_ref, DecodeError};
use crate::model::record::{errno_name, AttrSink};
use crate::model::{Event, EventData, EventKind};

/// A file change. Paths are absolute when `resolved`; otherwise as the process passed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    /// rename/link: the new name; symlink: the link created (`path` is then the link's target text).
    pub new_path: Option<String>,
    pub flags: u32,
    pub mode: u32,
    /// chown: the requested owner and group (`None` = unchanged).
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
    pub dirfd: i32,
    /// A relative path could be resolved against the process's cwd or dirfd.
    pub resolved: bool,
    /// 0 (or the fd) on success, `-errno` on failure.
    pub result: i64,
    /// How the kernel saw it: operation, resolution, identity, why it was kept.
    pub detail: FileDetail,
}

/// The kernel side of a file event: which operation, whether the path came from the kernel's objects,
/// the caller's own spelling, the file's identity and why the in-kernel filter kept it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileDetail {
    /// The syscall (`openat`, `ftruncate`, `fsetxattr`, …) or `io_uring`.
    pub operation: &'static str,
    /// io_uring: the opcode name (`WRITE`, `OPENAT`, …).
    pub io_uring_op: Option<&'static str>,
    /// `path` was built in the kernel from the file's dentry and mount (canonical).
    pub kernel_resolved: bool,
    /// The path as the caller spelled it, when `path` is kernel-resolved and the spelling was readable.
    pub spelled_path: Option<String>,
    /// Matched as a watched file's inode under another name (hard link).
    pub by_inode: bool,
    /// The resolved path was longer than the kernel buffer and was cut.
    pub truncated: bool,
    /// Kept regardless of path: the mode sets setuid/setgid.
    pub setid_mode: bool,
    /// Kept regardless of path: a `security.capability` xattr.
    pub capability: bool,
    /// xattr calls: the attribute name.
    pub xattr_name: Option<String>,
    /// Module loads: the parameters passed (`uargs`).
    pub module_params: Option<String>,
    /// (kernel device number, inode) when resolved.
    pub inode: Option<(u32, u64)>,
    /// `sensitive_read`: the class of the file read.
    pub sensitive: Option<SensitiveClass>,
    /// The kernel could not judge the spelling (relative, `.`/`..`, /proc): canonicalised in userspace.
    pub unjudged: bool,
}

impl File {
    pub fn succeeded(&self) -> bool {
        self.result >= 0
    }

    /// Whether an event of `kind` changes the file it names: every file kind but a read of a sensitive
    /// file and a module load (the module file is read, not written).
    pub fn changes_file(kind: EventKind) -> bool {
        !matches!(kind, EventKind::SensitiveRead | EventKind::ModuleLoad)
    }

    /// The paths the operation changed (what a `file_path` policy condition tests): for a rename both
    /// names; for a link only the new name (linking or symlinking *to* a file does not change it; its
    /// `path` is the source or the symlink's target text); otherwise the path.
    pub fn changed_paths(&self, kind: EventKind) -> impl Iterator<Item = &str> {
        let source =
            (kind != EventKind::FileLink || self.new_path.is_none()).then_some(self.path.as_str());
        source.into_iter().chain(self.new_path.as_deref())
    }
}

pub(super) fn decode(bytes: &[u8], kind: EventKind) -> Result<EventData, DecodeError> {
    let mut spare = std::mem::MaybeUninit::uninit();
    let e: &FileEvent = checked_ref(bytes, kind, &mut spare)?;
    let path = c_string(&e.path[..usize::from(e.path_len).min(RESOLVED_BUF)]);
    let second =
        (e.path2_len > 0).then(|| c_string(&e.path2[..usize::from(e.path2_len).min(PATH_LEN)]));
    let (new_path, xattr_name, module_params) = match kind {
        EventKind::FileXattr => (None, second, None),
        EventKind::ModuleLoad => (None, None, second),
        _ => (second, None, None),
    };
    let r = e.resolve;
    let via_uring = r & resolve::IO_URING != 0;
    let kernel_resolved = r & resolve::KERNEL != 0;
    let class = ((e.class & inode_class::SENSITIVE_MASK) >> inode_class::SENSITIVE_SHIFT) as u8;
    let detail = FileDetail {
        operation: if via_uring {
            "io_uring"
        } else {
            syscall_by_op(e.op).map(|s| s.name).unwrap_or(match kind {
                EventKind::SensitiveRead => "open",
                _ => "unknown",
            })
        },
        io_uring_op: via_uring.then(|| io_uring_op::name(e.op as u8)),
        kernel_resolved,
        spelled_path: (kernel_resolved && e.spelled_len > 0)
            .then(|| c_string(&e.spelled[..usize::from(e.spelled_len).min(PATH_LEN)])),
        by_inode: r & resolve::BY_INODE != 0,
        truncated: r & resolve::TRUNCATED != 0,
        setid_mode: r & resolve::SETID_MODE != 0,
        capability: r & resolve::CAPABILITY != 0,
        xattr_name,
        module_params,
        inode: (e.ino != 0).then_some((e.dev, e.ino)),
        sensitive: SensitiveClass::from_id(class),
        unjudged: r & resolve::UNJUDGED != 0,
    };
    Ok(EventData::File(File {
        resolved: kernel_resolved
            || (path.starts_with('/')
                && !detail.unjudged
                && new_path.as_ref().is_none_or(|p| p.starts_with('/'))),
        detail,
        path,
        new_path,
        flags: e.flags,
        mode: e.mode,
        owner_uid: (e.uid_arg != u32::MAX).then_some(e.uid_arg),
        owner_gid: (e.gid_arg != u32::MAX).then_some(e.gid_arg),
        dirfd: e.dirfd,
        result: e.result,
    }))
}

pub(super) fn attributes<'a>(f: &'a File, a: &mut impl AttrSink<'a>) {
    a.push(("file.path", f.path.as_str().into()));
    if let Some(p) = &f.new_path {
        a.push(("tripline.file.new_path", p.as_str().into()));
    }
    a.push(("tripline.file.path_resolved", f.resolved.into()));
    let d = &f.detail;
    a.push(("tripline.file.operation", d.operation.into()));
    a.push(("tripline.file.kernel_resolved", d.kernel_resolved.into()));
    if let Some(op) = d.io_uring_op {
        a.push(("tripline.io_uring.opcode", op.into()));
    }
    if let Some(p) = &d.spelled_path {
        a.push(("tripline.file.spelled_path", p.as_str().into()));
    }
    if d.by_inode {
        a.push(("tripline.file.matched_by_inode", true.into()));
    }
    if d.truncated {
        a.push(("tripline.file.path_truncated", true.into()));
    }
    if d.setid_mode {
        a.push(("tripline.file.setid_mode", true.into()));
    }
    if let Some(n) = &d.xattr_name {
        a.push(("tripline.file.xattr_name", n.as_str().into()));
    }
    if let Some(p) = &d.module_params {
        a.push(("tripline.module.params", p.as_str().into()));
    }
    if let Some((dev, ino)) = d.inode {
        a.push((
            "file.inode",
            itoa::Buffer::new().format(ino).to_string().into(),
        ));
        a.push(("tripline.file.device", device_text(dev).into()));
    }
    if let Some(c) = d.sensitive {
        a.push(("tripline.file.sensitive_class", c.as_str().into()));
    }
    a.push(("tripline.file.flags", f.flags.into()));
    if f.mode != 0 {
        a.push(("file.mode", mode_text(f.mode).into()));
    }
    if let Some(u) = f.owner_uid {
        a.push((
            "file.owner.id",
            itoa::Buffer::new().format(u).to_string().into(),
        ));
    }
    if let Some(g) = f.owner_gid {
        a.push((
            "file.group.id",
            itoa::Buffer::new().format(g).to_string().into(),
        ));
    }
    a.push(("tripline.file.result", f.result.into()));
    if f.result < 0 {
        a.push(("error.type", errno_name(-f.result).into()));
    }
}

/// A kernel device number as `major:minor` (the kernel's internal encoding: 12 bits of major above 20
/// of minor).
fn device_text(dev: u32) -> String {
    let mut s = String::with_capacity(12);
    s.push_str(itoa::Buffer::new().format(dev >> 20));
    s.push(':');
    s.push_str(itoa::Buffer::new().format(dev & 0xfffff));
    s
}

/// Permission bits as four octal digits (`0644`, `4755`).
fn mode_text(mode: u32) -> String {
    (0..4)
        .rev()
        .map(|i| char::from(b'0' + ((mode >> (3 * i)) & 7) as u8))
        .collect()
}

pub(super) fn summary(ev: &Event, f: &File, out: &mut String) {
    use std::fmt::Write;
    let verb = match ev.kind {
        EventKind::FileUnlink => "deleted",
        EventKind::FileRename => "renamed",
        EventKind::FileChmod => "changed the mode of",
        EventKind::FileChown => "changed the owner of",
        EventKind::FileLink => "linked",
        EventKind::FileXattr => "changed an extended attribute of",
        EventKind::SensitiveRead => "read",
        EventKind::ModuleLoad if f.path.is_empty() => "loaded a kernel module from memory",
        EventKind::ModuleLoad => "loaded the kernel module",
        _ if f.detail.io_uring_op.is_some() => "wrote (io_uring)",
        _ if matches!(f.detail.operation, "truncate" | "ftruncate") => "truncated",
        _ => "opened for writing",
    };
    for part in [" ", verb, " ", &f.path] {
        out.push_str(part);
    }
    if let Some(to) = f.new_path.as_ref().or(f.detail.xattr_name.as_ref()) {
        out.push_str(" -> ");
        out.push_str(to);
    }
    if f.result < 0 {
        // Writing into a String cannot fail.
        let _ = write!(out, " (failed: {})", errno_name(-f.result));
    }
}

pub fn encode(
    mut h: tripline_common::Header,
    path: &str,
    path2: Option<&str>,
    mode: u32,
    result: i64,
) -> Vec<u8> {
    h.len = std::mem::size_of::<FileEvent>() as u32;
    let mut e = FileEvent {
        header: h,
        flags: 0o1101,
        mode,
        uid_arg: u32::MAX,
        gid_arg: u32::MAX,
        dirfd: -100,
        path_len: 0,
        path2_len: 0,
        result,
        op: 0,
        resolve: 0,
        spelled_len: 0,
        dev: 0,
        class: 0,
        ino: 0,
        path: [0; RESOLVED_BUF],
        path2: [0; PATH_LEN],
        spelled: [0; PATH_LEN],
    };
    let p = path.as_bytes();
    e.path[..p.len()].copy_from_slice(p);
    e.path_len = (p.len() + 1) as u16;
    if let Some(p2) = path2 {
        e.path2[..p2.len()].copy_from_slice(p2.as_bytes());
        e.path2_len = (p2.len() + 1) as u16;
    }
    super::encode::bytes_of(&e)
}

/// Like [`encode`], for a kernel-resolved event: `op` (a `sysop` or io_uring opcode), `resolve` flags,
/// the caller's spelling and the inode class.
pub fn encode_resolved(
    h: tripline_common::Header,
    path: &str,
    spelled: Option<&str>,
    op: u32,
    resolve_flags: u16,
    class: u32,
) -> Vec<u8> {
    let mut bytes = encode(h, path, None, 0, 0);
    let mut e: FileEvent = super::checked(&bytes, EventKind::FileWrite).expect("own encoding");
    e.op = op;
    e.resolve = resolve_flags | resolve::KERNEL;
    e.class = class;
    e.dev = 8 << 20;
    e.ino = 42;
    if let Some(sp) = spelled {
        e.spelled[..sp.len()].copy_from_slice(sp.as_bytes());
        e.spelled_len = (sp.len() + 1) as u16;
    }
    bytes = super::encode::bytes_of(&e);
    bytes
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use tripline_common::kind;

    use super::super::decode;
    use super::super::encode::header;
    use super::*;

    #[test]
    fn numbers_as_the_formatter_writes_them() {
        for dev in [0, 27, (8 << 20) | 1, u32::MAX] {
            assert_eq!(device_text(dev), format!("{}:{}", dev >> 20, dev & 0xfffff));
        }
        for mode in [0o644, 0o4755, 0o7777, 0o100644, 0o1, 0] {
            assert_eq!(mode_text(mode), format!("{:04o}", mode & 0o7777));
        }
    }

    #[test]
    fn file_round_trip() {
        let h = header(kind::FILE_RENAME, size_of::<FileEvent>(), 9);
        let d = decode(&encode(h, "/etc/passwd+", Some("/etc/passwd"), 0o644, 0)).unwrap();
        assert_eq!(d.kind, EventKind::FileRename);
        let EventData::File(f) = d.data else {
            panic!("not a file event")
        };
        assert_eq!(f.path, "/etc/passwd+");
        assert_eq!(f.new_path.as_deref(), Some("/etc/passwd"));
        assert_eq!(
            (f.mode, f.result, f.resolved, f.owner_uid),
            (0o644, 0, true, None)
        );
        let h = header(kind::FILE_WRITE, size_of::<FileEvent>(), 9);
        let EventData::File(f) = decode(&encode(h, "notes.txt", None, 0, -13)).unwrap().data else {
            panic!()
        };
        assert!(!f.resolved && !f.succeeded());
    }

    #[test]
    fn kernel_resolved_event_carries_spelling_identity_and_class() {
        use tripline_common::{inode_class, resolve, sysop, SensitiveClass};
        let h = header(kind::FILE_WRITE, size_of::<FileEvent>(), 9);
        let bytes = encode_resolved(
            h,
            "/etc/passwd",
            Some("/tmp/../etc/./passwd"),
            sysop::OPENAT2,
            resolve::BY_INODE,
            inode_class::WATCHED,
        );
        let EventData::File(f) = decode(&bytes).unwrap().data else {
            panic!()
        };
        assert!(f.resolved && f.detail.kernel_resolved && f.detail.by_inode);
        assert_eq!(f.detail.operation, "openat2");
        assert_eq!(
            f.detail.spelled_path.as_deref(),
            Some("/tmp/../etc/./passwd")
        );
        assert_eq!(f.detail.inode, Some((8 << 20, 42)));
        let mut a = Vec::new();
        attributes(&f, &mut a);
        let get = |k: &str| a.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("tripline.file.device"), Some("8:0".into()));
        assert_eq!(get("tripline.file.matched_by_inode"), Some(true.into()));

        // io_uring: the opcode, not a syscall.
        let h = header(kind::FILE_WRITE, size_of::<FileEvent>(), 9);
        let bytes = encode_resolved(h, "/etc/x", None, 23, resolve::IO_URING, 0);
        let EventData::File(f) = decode(&bytes).unwrap().data else {
            panic!()
        };
        assert_eq!(
            (f.detail.operation, f.detail.io_uring_op),
            ("io_uring", Some("WRITE"))
        );

        // A sensitive read: the class from the inode map value.
        let h = header(kind::SENSITIVE_READ, size_of::<FileEvent>(), 9);
        let class = (SensitiveClass::SshHostKey as u32) << inode_class::SENSITIVE_SHIFT;
        let bytes = encode_resolved(h, "/etc/ssh/ssh_host_ed25519_key", None, 0, 0, class);
        let d = decode(&bytes).unwrap();
        assert_eq!(d.kind, EventKind::SensitiveRead);
        let EventData::File(f) = d.data else { panic!() };
        assert_eq!(f.detail.sensitive, Some(SensitiveClass::SshHostKey));
        assert_eq!(f.detail.operation, "open");
    }
}
