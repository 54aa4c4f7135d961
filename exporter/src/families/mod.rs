//! Ring-buffer bytes to typed events: pure, length-checked, no transmute.
//!
//! `decode` copies each wire struct out of the record with `read_unaligned` on plain integer/byte-array
//! types only (never on enums), after checking the version, the kind and the length.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tripline_common::{
    flags, kind, sysop, ExecEvent, ExitEvent, FileEvent, ForkEvent, Header, NetEvent, SysEvent,
    AF_INET6, ARGS_LEN, FILENAME_LEN, PATH_LEN, SYS_NAME_LEN, WIRE_VERSION,
};

use crate::event::{EventData, EventKind, File, Net, Sys, Transport};
use crate::sinks::metrics::DecodeReason;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than a header")]
    Short(usize),
    #[error("wire version {0}, expected {WIRE_VERSION}")]
    Version(u16),
    #[error("unknown event kind {0}")]
    UnknownKind(u16),
    #[error("{kind:?} record of {got} bytes, expected {want}")]
    Length {
        kind: EventKind,
        got: usize,
        want: usize,
    },
}

impl DecodeError {
    pub fn reason(&self) -> DecodeReason {
        match self {
            DecodeError::Short(_) => DecodeReason::short,
            DecodeError::Version(_) => DecodeReason::version,
            DecodeError::UnknownKind(_) => DecodeReason::unknown_kind,
            DecodeError::Length { .. } => DecodeReason::length,
        }
    }

    /// The `kind` label: the event kind when the header was readable.
    pub fn kind_label(&self) -> &'static str {
        match self {
            DecodeError::Length { kind, .. } => kind.as_str(),
            _ => "unknown",
        }
    }
}

/// A decoded record: the caller as the kernel saw it, plus the kind-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub kind: EventKind,
    pub header: Header,
    pub data: EventData,
    /// argv for exec records, split on NUL.
    pub args: Vec<String>,
}

/// Copies a `T` from the front of `bytes`. `T` must be a `#[repr(C)]` wire struct made of integers and
/// byte arrays, for which every bit pattern is valid.
fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: length checked above; T is a plain-old-data wire type (integers and byte arrays only).
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const T) })
}

fn checked<T: Copy>(bytes: &[u8], kind: EventKind) -> Result<T, DecodeError> {
    let want = std::mem::size_of::<T>();
    if bytes.len() < want {
        return Err(DecodeError::Length {
            kind,
            got: bytes.len(),
            want,
        });
    }
    read::<T>(bytes).ok_or(DecodeError::Length {
        kind,
        got: bytes.len(),
        want,
    })
}

pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let header: Header = read(bytes).ok_or(DecodeError::Short(bytes.len()))?;
    if header.version != WIRE_VERSION {
        return Err(DecodeError::Version(header.version));
    }
    let kind = EventKind::from_wire(header.kind).ok_or(DecodeError::UnknownKind(header.kind))?;
    let mut args = Vec::new();
    let data = match header.kind {
        kind::EXEC => {
            let e: ExecEvent = checked(bytes, kind)?;
            let flen = usize::from(e.filename_len).min(FILENAME_LEN);
            let alen = usize::from(e.args_len).min(ARGS_LEN);
            args = split_args(&e.args[..alen]);
            EventData::Exec {
                filename: c_string(&e.filename[..flen]),
                filename_truncated: e.header.flags & flags::FILENAME_TRUNCATED != 0,
            }
        }
        kind::FORK => {
            let e: ForkEvent = checked(bytes, kind)?;
            EventData::Fork {
                child_pid: e.child_pid,
                child_start_ns: e.child_start_ns,
            }
        }
        kind::EXIT => {
            let e: ExitEvent = checked(bytes, kind)?;
            EventData::Exit {
                status: e.exit_code,
            }
        }
        kind::CONNECT | kind::ACCEPT | kind::LISTEN => {
            let e: NetEvent = checked(bytes, kind)?;
            let ip = |a: [u8; 16]| -> IpAddr {
                if e.family == AF_INET6 {
                    IpAddr::V6(Ipv6Addr::from(a))
                } else {
                    IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
                }
            };
            EventData::Net(Net {
                transport: Transport::Tcp,
                local: SocketAddr::new(ip(e.local_addr), e.local_port),
                peer: SocketAddr::new(ip(e.peer_addr), e.peer_port),
                result: e.result,
            })
        }
        kind::FILE_WRITE
        | kind::FILE_UNLINK
        | kind::FILE_RENAME
        | kind::FILE_CHMOD
        | kind::FILE_CHOWN
        | kind::FILE_LINK => {
            let e: FileEvent = checked(bytes, kind)?;
            let path = c_string(&e.path[..usize::from(e.path_len).min(PATH_LEN)]);
            let new_path = (e.path2_len > 0)
                .then(|| c_string(&e.path2[..usize::from(e.path2_len).min(PATH_LEN)]));
            EventData::File(File {
                resolved: path.starts_with('/')
                    && new_path.as_ref().is_none_or(|p| p.starts_with('/')),
                path,
                new_path,
                flags: e.flags,
                mode: e.mode,
                owner_uid: (e.uid_arg != u32::MAX).then_some(e.uid_arg),
                owner_gid: (e.gid_arg != u32::MAX).then_some(e.gid_arg),
                dirfd: e.dirfd,
                result: e.result,
            })
        }
        kind::PRIV_CHANGE
        | kind::PTRACE
        | kind::BPF_LOAD
        | kind::SIGNAL_SELF
        | kind::MEMFD_CREATE
        | kind::MOUNT
        | kind::UMOUNT => {
            let e: SysEvent = checked(bytes, kind)?;
            let text = |b: &[u8], n: u16| {
                (n > 0).then(|| c_string(&b[..usize::from(n).min(SYS_NAME_LEN)]))
            };
            EventData::Sys(Sys {
                syscall: syscall_name(e.op),
                args: e.args,
                name: text(&e.name, e.name_len),
                name2: text(&e.name2, e.name2_len),
                result: e.result,
            })
        }
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(Decoded {
        kind,
        header,
        data,
        args,
    })
}

fn syscall_name(op: u32) -> &'static str {
    match op {
        sysop::SETUID => "setuid",
        sysop::SETGID => "setgid",
        sysop::SETREUID => "setreuid",
        sysop::SETREGID => "setregid",
        sysop::SETRESUID => "setresuid",
        sysop::SETRESGID => "setresgid",
        sysop::PTRACE => "ptrace",
        sysop::BPF => "bpf",
        sysop::KILL => "kill",
        sysop::TKILL => "tkill",
        sysop::TGKILL => "tgkill",
        sysop::MEMFD_CREATE => "memfd_create",
        sysop::MOUNT => "mount",
        sysop::UMOUNT => "umount",
        _ => "unknown",
    }
}

/// Bytes up to the first NUL, lossily as UTF-8.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// NUL-separated argv (as in /proc/pid/cmdline) into strings; a trailing NUL ends the last one.
pub fn split_args(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Wire encoding, the exact inverse of [`decode`] for the fields the probes fill: for round-trip tests,
/// benchmarks and recorded-event replays.
pub mod encode {
    use super::*;

    fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: T is a padding-free repr(C) wire type; reading its bytes is defined.
        unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
            .to_vec()
    }

    pub fn header(kind: u16, len: usize, pid: u32) -> Header {
        Header {
            version: WIRE_VERSION,
            kind,
            len: len as u32,
            ktime_ns: 1_000_000_000,
            tid: pid,
            pid,
            ppid: 1,
            uid: 1000,
            gid: 1000,
            euid: 1000,
            egid: 1000,
            auid: u32::MAX,
            start_ns: 500_000_000,
            parent_start_ns: 10_000_000,
            comm: *b"true\0\0\0\0\0\0\0\0\0\0\0\0",
            ..Header::default()
        }
    }

    pub fn exec(h: Header, filename: &str, args: &[&str]) -> Vec<u8> {
        let mut e = ExecEvent {
            header: h,
            filename_len: 0,
            args_len: 0,
            _pad: 0,
            filename: [0; FILENAME_LEN],
            args: [0; ARGS_LEN],
        };
        let f = filename.as_bytes();
        let flen = f.len().min(FILENAME_LEN - 1);
        e.filename[..flen].copy_from_slice(&f[..flen]);
        e.filename_len = (flen + 1) as u16;
        let mut pos = 0;
        for a in args {
            let a = a.as_bytes();
            if pos + a.len() + 1 > ARGS_LEN {
                e.header.flags |= flags::ARGS_TRUNCATED;
                break;
            }
            e.args[pos..pos + a.len()].copy_from_slice(a);
            pos += a.len() + 1;
        }
        e.args_len = pos as u16;
        bytes_of(&e)
    }

    pub fn file(h: Header, path: &str, path2: Option<&str>, mode: u32, result: i64) -> Vec<u8> {
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
            path: [0; PATH_LEN],
            path2: [0; PATH_LEN],
        };
        let p = path.as_bytes();
        e.path[..p.len()].copy_from_slice(p);
        e.path_len = (p.len() + 1) as u16;
        if let Some(p2) = path2 {
            e.path2[..p2.len()].copy_from_slice(p2.as_bytes());
            e.path2_len = (p2.len() + 1) as u16;
        }
        bytes_of(&e)
    }

    pub fn sys(h: Header, op: u32, args: [u64; 4], name: Option<&str>, result: i64) -> Vec<u8> {
        let mut e = SysEvent {
            header: h,
            op,
            name_len: 0,
            name2_len: 0,
            args,
            result,
            name: [0; SYS_NAME_LEN],
            name2: [0; SYS_NAME_LEN],
        };
        if let Some(n) = name {
            e.name[..n.len()].copy_from_slice(n.as_bytes());
            e.name_len = (n.len() + 1) as u16;
        }
        bytes_of(&e)
    }

    pub fn fork(h: Header, child_pid: u32, child_start_ns: u64) -> Vec<u8> {
        bytes_of(&ForkEvent {
            header: h,
            child_pid,
            _pad: 0,
            child_start_ns,
        })
    }

    pub fn exit(h: Header, exit_code: u32) -> Vec<u8> {
        bytes_of(&ExitEvent {
            header: h,
            exit_code,
            _pad: 0,
        })
    }

    pub fn net(h: Header, local: SocketAddr, peer: SocketAddr, result: i64) -> Vec<u8> {
        let addr = |a: IpAddr| -> [u8; 16] {
            match a {
                IpAddr::V4(v4) => {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&v4.octets());
                    b
                }
                IpAddr::V6(v6) => v6.octets(),
            }
        };
        bytes_of(&NetEvent {
            header: h,
            family: if local.is_ipv6() {
                AF_INET6
            } else {
                tripline_common::AF_INET
            },
            protocol: tripline_common::IPPROTO_TCP,
            local_port: local.port(),
            peer_port: peer.port(),
            local_addr: addr(local.ip()),
            peer_addr: addr(peer.ip()),
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;
    use std::mem::size_of;

    #[test]
    fn exec_round_trip() {
        let h = header(kind::EXEC, size_of::<ExecEvent>(), 42);
        let d = decode(&exec(h, "/bin/true", &["/bin/true", "a b", ""])).unwrap();
        assert_eq!(d.kind, EventKind::Exec);
        assert_eq!(d.header.pid, 42);
        assert_eq!(d.args, vec!["/bin/true", "a b", ""]);
        assert_eq!(
            d.data,
            EventData::Exec {
                filename: "/bin/true".into(),
                filename_truncated: false
            }
        );
    }

    #[test]
    fn exec_truncated_args_flagged() {
        let h = header(kind::EXEC, size_of::<ExecEvent>(), 1);
        let long = "x".repeat(1000);
        let args: Vec<&str> = std::iter::repeat_n(long.as_str(), 10).collect();
        let d = decode(&exec(h, "/bin/echo", &args)).unwrap();
        assert_eq!(d.args.len(), 4);
        assert!(d.header.flags & flags::ARGS_TRUNCATED != 0);
    }

    #[test]
    fn fork_exit_round_trip() {
        let d = decode(&fork(header(kind::FORK, size_of::<ForkEvent>(), 7), 8, 99)).unwrap();
        assert_eq!(
            d.data,
            EventData::Fork {
                child_pid: 8,
                child_start_ns: 99
            }
        );
        let d = decode(&exit(header(kind::EXIT, size_of::<ExitEvent>(), 7), 256)).unwrap();
        assert_eq!(d.data, EventData::Exit { status: 256 });
    }

    #[test]
    fn net_round_trip_v4_v6() {
        for (k, local, peer, res) in [
            (kind::CONNECT, "127.0.0.1:40000", "127.0.0.1:80", -111i64),
            (kind::ACCEPT, "[::1]:8080", "[::1]:50000", 5),
            (kind::LISTEN, "0.0.0.0:22", "0.0.0.0:0", 0),
        ] {
            let (l, p): (SocketAddr, SocketAddr) = (local.parse().unwrap(), peer.parse().unwrap());
            let d = decode(&net(header(k, size_of::<NetEvent>(), 3), l, p, res)).unwrap();
            let EventData::Net(n) = d.data else {
                panic!("not net")
            };
            assert_eq!((n.local, n.peer, n.result), (l, p, res));
        }
    }

    #[test]
    fn file_round_trip() {
        let h = header(kind::FILE_RENAME, size_of::<FileEvent>(), 9);
        let d = decode(&file(h, "/etc/passwd+", Some("/etc/passwd"), 0o644, 0)).unwrap();
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
        let EventData::File(f) = decode(&file(h, "notes.txt", None, 0, -13)).unwrap().data else {
            panic!()
        };
        assert!(!f.resolved && !f.succeeded());
    }

    #[test]
    fn sys_round_trip() {
        let h = header(kind::MEMFD_CREATE, size_of::<SysEvent>(), 4);
        let d = decode(&sys(
            h,
            sysop::MEMFD_CREATE,
            [1, 0, 0, 0],
            Some("payload"),
            3,
        ))
        .unwrap();
        let EventData::Sys(x) = d.data else {
            panic!("not sys")
        };
        assert_eq!(
            (x.syscall, x.name.as_deref(), x.result),
            ("memfd_create", Some("payload"), 3)
        );
        let h = header(kind::PRIV_CHANGE, size_of::<SysEvent>(), 4);
        let EventData::Sys(x) = decode(&sys(
            h,
            sysop::SETRESUID,
            [u64::from(u32::MAX), 0, u64::from(u32::MAX), 0],
            None,
            0,
        ))
        .unwrap()
        .data
        else {
            panic!()
        };
        assert_eq!(x.new_euid(1000), Some(0));
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(decode(&[0u8; 10]).unwrap_err(), DecodeError::Short(10));
        let mut h = header(kind::EXIT, size_of::<ExitEvent>(), 1);
        h.version = 99;
        assert_eq!(decode(&exit(h, 0)).unwrap_err(), DecodeError::Version(99));
        let h = header(77, size_of::<ExitEvent>(), 1);
        assert_eq!(
            decode(&exit(h, 0)).unwrap_err(),
            DecodeError::UnknownKind(77)
        );
        let h = header(kind::EXEC, size_of::<ExecEvent>(), 1);
        let bytes = exit(h, 0); // an exec header on an exit-sized record
        let err = decode(&bytes).unwrap_err();
        assert_eq!(err.reason(), DecodeReason::length);
        assert_eq!(err.kind_label(), "exec");
    }

    #[test]
    fn split_args_edge_cases() {
        assert!(split_args(b"").is_empty());
        assert_eq!(split_args(b"a\0"), vec!["a"]);
        assert_eq!(split_args(b"a\0\0b\0"), vec!["a", "", "b"]);
        assert_eq!(c_string(b"ab\0cd"), "ab");
    }
}
