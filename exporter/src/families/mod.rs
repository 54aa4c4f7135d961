//! What each event family means, one module per family, mirroring `exporter-ebpf/src/<family>.rs`:
//! its wire decode, its typed data, its log attributes and one-line summary, the accessors the policy and
//! baselines read, and its tests. This module is the dispatch: it checks the header and hands the bytes to
//! the family the kind registry (`tripline_common::kinds`) names.
//!
//! Floor 0 with [`crate::model`]: families import the model, never a stage.
//!
//! Decoding copies each wire struct out of the record with `read_unaligned` on plain integer/byte-array
//! types only (never on enums), after checking the version, the kind and the length.
pub mod file;
pub mod io_uring;
pub mod net;
pub mod privilege;
pub mod process;
pub mod tamper;

use std::borrow::Cow;
use std::mem::MaybeUninit;

use tripline_common::{flags, syscall_by_op, Header, SysEvent, SYS_NAME_LEN, WIRE_VERSION};

use crate::model::record::{errno_name, AttrSink, Attrs};
use crate::model::{Event, EventData, EventKind, Family};

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

/// Why a record could not be decoded (the `reason` label of `tripline_decode_errors_total`).
#[derive(
    Clone, Copy, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum DecodeReason {
    short,
    version,
    unknown_kind,
    length,
}

impl DecodeReason {
    pub const ALL: &'static [DecodeReason] = &[
        DecodeReason::short,
        DecodeReason::version,
        DecodeReason::unknown_kind,
        DecodeReason::length,
    ];
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

    /// The event kind, when the header was readable.
    pub fn kind(&self) -> Option<EventKind> {
        match self {
            DecodeError::Length { kind, .. } => Some(*kind),
            _ => None,
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
    /// Exec records: the executable and working directory as the kernel resolved them.
    pub exec_paths: process::ExecPaths,
}

/// Copies a `T` from the front of `bytes`, or says how long it should have been.
/// `T` must be a `#[repr(C)]` wire struct made of integers and byte arrays (every bit pattern valid).
pub(crate) fn checked<T: Copy>(bytes: &[u8], kind: EventKind) -> Result<T, DecodeError> {
    fits::<T>(bytes, kind)?;
    // SAFETY: length checked; T is a plain-old-data wire type (integers and byte arrays only).
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const T) })
}

/// [`checked`] without the copy when `bytes` is aligned for `T` (ring-buffer records are, at 8
/// bytes): the large records (exec: several KiB) are read in place; otherwise they are copied into
/// `spare`. (A `Cow` would not do: moving one moves all of `T`'s bytes whichever variant it holds.)
pub(crate) fn checked_ref<'a, T: Copy>(
    bytes: &'a [u8],
    kind: EventKind,
    spare: &'a mut MaybeUninit<T>,
) -> Result<&'a T, DecodeError> {
    fits::<T>(bytes, kind)?;
    let at = bytes.as_ptr() as *const T;
    // SAFETY: length checked; T is a plain-old-data wire type (integers and byte arrays only), so any
    // bytes are a valid T; a reference into `bytes` is taken only when the address is aligned for T.
    Ok(if at.is_aligned() {
        unsafe { &*at }
    } else {
        spare.write(unsafe { std::ptr::read_unaligned(at) })
    })
}

/// Whether `bytes` holds a whole `T`; if not, how long it should have been.
fn fits<T>(bytes: &[u8], kind: EventKind) -> Result<(), DecodeError> {
    let want = std::mem::size_of::<T>();
    if bytes.len() < want {
        return Err(DecodeError::Length {
            kind,
            got: bytes.len(),
            want,
        });
    }
    Ok(())
}

pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    if bytes.len() < std::mem::size_of::<Header>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: length checked; Header is plain-old-data.
    let header: Header = unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const Header) };
    if header.version != WIRE_VERSION {
        return Err(DecodeError::Version(header.version));
    }
    let kind = EventKind::from_wire(header.kind).ok_or(DecodeError::UnknownKind(header.kind))?;
    let mut args = Vec::new();
    let mut exec_paths = process::ExecPaths::default();
    let data = match kind.family() {
        Family::Process => process::decode(bytes, kind, &mut args, &mut exec_paths)?,
        Family::Net => net::decode(bytes, kind)?,
        Family::File => file::decode(bytes, kind)?,
        Family::Privilege | Family::Tamper | Family::IoUring => {
            EventData::Sys(Sys::decode(bytes, kind)?)
        }
    };
    Ok(Decoded {
        kind,
        header,
        data,
        args,
        exec_paths,
    })
}

/// Log attributes of an event: who (process, parent, ancestry), then what (the family's own).
pub fn attributes(ev: &Event) -> Attrs<'_> {
    // Room for every attribute a record carries (about 35 with a family's own), so it never grows.
    let mut a = Vec::with_capacity(48);
    attributes_into(ev, &mut a);
    a
}

/// [`attributes`] written into any sink, in the same order.
pub fn attributes_into<'a>(ev: &'a Event, a: &mut impl AttrSink<'a>) {
    process::identity_attributes(ev, a);
    match &ev.data {
        EventData::Exec { .. } | EventData::Fork { .. } | EventData::Exit { .. } => {
            process::attributes(ev, a)
        }
        EventData::Net(n) => net::attributes(ev, n, a),
        EventData::File(f) => file::attributes(f, a),
        EventData::Sys(x) => {
            a.push(("tripline.syscall.name", x.syscall.into()));
            a.push(("tripline.syscall.result", x.result.into()));
            if x.result < 0 {
                a.push(("error.type", errno_name(-x.result).into()));
            }
            match ev.kind.family() {
                Family::Privilege => privilege::attributes(ev, x, a),
                Family::IoUring => io_uring::attributes(ev, x, a),
                _ => tamper::attributes(ev, x, a),
            }
        }
    }
    if ev.wire_flags & (flags::READ_ERROR | flags::NO_OFFSETS) != 0 {
        a.push(("tripline.event.incomplete", true.into()));
    }
}

/// A one-line human summary of an event (the log record's body): who acted, then what the family says
/// they did, written into one string.
pub fn summary(ev: &Event) -> String {
    let mut s = String::with_capacity(160);
    summary_into(ev, &mut s);
    s
}

/// [`summary`] appended to `s` (a buffer the caller reuses).
pub fn summary_into(ev: &Event, s: &mut String) {
    use std::fmt::Write;
    let p = &ev.process;
    for (text, n) in [
        (p.exe_name(), None),
        (" (pid ", Some(p.pid)),
        (", ppid ", Some(p.ppid)),
        (", uid ", Some(p.euid)),
    ] {
        s.push_str(text);
        if let Some(n) = n {
            s.push_str(itoa::Buffer::new().format(n));
        }
    }
    s.push(')');
    match &ev.data {
        EventData::Exec { .. } | EventData::Fork { .. } | EventData::Exit { .. } => {
            process::summary(ev, s)
        }
        EventData::Net(n) => net::summary(ev, n, s),
        EventData::File(f) => file::summary(ev, f, s),
        EventData::Sys(x) if ev.kind.family() == Family::IoUring => io_uring::summary(ev, x, s),
        EventData::Sys(x) => {
            let _ = write!(s, " called {}", x.syscall);
            if let Some(n) = &x.name {
                let _ = write!(s, " {n}");
            }
            if x.result < 0 {
                let _ = write!(s, " (failed: {})", errno_name(-x.result));
            }
        }
    }
}

/// A privilege or kernel-tampering syscall (`SysEvent`): its name, raw arguments and result. Shared by the
/// privilege and tamper families, as `sys_enter` is shared by their probes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sys {
    /// The syscall: setuid, setresuid, ptrace, bpf, kill, memfd_create, mount, …
    pub syscall: &'static str,
    pub args: [u64; 4],
    /// memfd name, mount target, umount target.
    pub name: Option<String>,
    /// mount source.
    pub name2: Option<String>,
    pub result: i64,
}

impl Sys {
    fn decode(bytes: &[u8], kind: EventKind) -> Result<Sys, DecodeError> {
        let e: SysEvent = checked(bytes, kind)?;
        let text =
            |b: &[u8], n: u16| (n > 0).then(|| c_string(&b[..usize::from(n).min(SYS_NAME_LEN)]));
        Ok(Sys {
            syscall: match kind.family() {
                Family::IoUring => "io_uring",
                _ => syscall_by_op(e.op).map(|s| s.name).unwrap_or("unknown"),
            },
            args: e.args,
            name: text(&e.name, e.name_len),
            name2: text(&e.name2, e.name2_len),
            result: e.result,
        })
    }

    pub fn succeeded(&self) -> bool {
        self.result >= 0
    }

    /// For the setuid family: the effective uid after a successful call, given the one before.
    pub fn new_euid(&self, before: u32) -> Option<u32> {
        privilege::new_euid(self, before)
    }
}

/// Bytes up to the first NUL, lossily as UTF-8.
pub fn c_string(bytes: &[u8]) -> String {
    c_str(bytes).into_owned()
}

/// [`c_string`], borrowed unless invalid UTF-8 was replaced.
pub fn c_str(bytes: &[u8]) -> Cow<'_, str> {
    lossy(c_bytes(bytes))
}

/// The bytes before the first NUL (all of them when there is none).
pub fn c_bytes(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// Bytes as text, invalid UTF-8 replaced. Valid text (nearly all of it) takes `from_utf8`'s
/// word-at-a-time check rather than the replacing decoder's byte-at-a-time one.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// NUL-separated argv (as in /proc/pid/cmdline) into strings; a trailing NUL ends the last one.
pub fn split_args(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut args = Vec::with_capacity(bytes.iter().filter(|&&b| b == 0).count() + 1);
    args.extend(bytes.split(|&b| b == 0).map(|a| lossy(a).into_owned()));
    args
}

/// Wire encoding, the exact inverse of [`decode`] for the fields the probes fill: for round-trip tests,
/// benchmarks and recorded-event replays. Each family adds its own encoder.
pub mod encode {
    use tripline_common::{Header, SysEvent, SYS_NAME_LEN, WIRE_VERSION};

    pub use super::file::encode as file;
    pub use super::net::encode as net;
    pub use super::process::encode::{exec, exec_resolved, exit, fork};

    pub(crate) fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
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

    /// A decoded record as an event of a process nobody knows (family tests: wire → decode → event).
    #[cfg(test)]
    pub(crate) fn bare_event(bytes: &[u8]) -> crate::model::Event {
        let d = super::decode(bytes).unwrap();
        crate::model::Event {
            kind: d.kind,
            ktime_ns: 0,
            time: std::time::SystemTime::UNIX_EPOCH,
            process: crate::model::Process::default(),
            parent: None,
            ancestors: Default::default(),
            data: d.data,
            wire_flags: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;
    use std::mem::size_of;
    use tripline_common::{kind, sysop, ExecEvent, ExitEvent};

    /// One sentence per event: who (name, pid, ppid, uid), then what.
    #[test]
    fn summaries_read_as_sentences() {
        use std::net::SocketAddr;
        let who = |mut ev: crate::model::Event| {
            ev.process.exe = "/usr/bin/python3".into();
            ev.process.pid = 42;
            ev.process.ppid = 7;
            ev.process.euid = 1000;
            ev
        };
        let mut ev = who(bare_event(&exit(
            header(kind::EXIT, size_of::<ExitEvent>(), 42),
            256,
        )));
        assert_eq!(
            summary(&ev),
            "python3 (pid 42, ppid 7, uid 1000) exited with status 256"
        );
        ev.data = EventData::Exec {
            filename: "/opt/app.py".into(),
            filename_truncated: false,
        };
        ev.kind = EventKind::Exec;
        ev.process.script = Some("/opt/app.py".into());
        assert_eq!(
            summary(&ev),
            "python3 (pid 42, ppid 7, uid 1000) executed /usr/bin/python3 running /opt/app.py"
        );
        let h = header(kind::CONNECT, size_of::<tripline_common::NetEvent>(), 42);
        let peer: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let local: SocketAddr = "[2001:db8::2]:40000".parse().unwrap();
        let ev = who(bare_event(&net::encode(h, local, peer, -111)));
        assert_eq!(
            summary(&ev),
            "python3 (pid 42, ppid 7, uid 1000) failed to connect to [2001:db8::1]:443 (ECONNREFUSED)"
        );
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
        assert_eq!(err.kind(), Some(EventKind::Exec));
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
    }

    #[test]
    fn every_kind_decodes_through_its_family() {
        for k in EventKind::ALL {
            let bytes = match k.family() {
                Family::Process => exec(header(k.wire(), 0, 1), "/bin/x", &["x"]),
                Family::Net => net(
                    header(k.wire(), 0, 1),
                    "127.0.0.1:1".parse().unwrap(),
                    "127.0.0.1:2".parse().unwrap(),
                    0,
                ),
                Family::File => file(header(k.wire(), 0, 1), "/etc/x", None, 0, 0),
                Family::Privilege | Family::Tamper | Family::IoUring => {
                    sys(header(k.wire(), 0, 1), sysop::SETUID, [0; 4], None, 0)
                }
            };
            let d = decode(&bytes).unwrap_or_else(|e| panic!("{k:?}: {e}"));
            assert_eq!(d.kind, *k);
        }
    }

    /// A record decodes the same read in place (aligned) or copied (at an odd address).
    #[test]
    fn records_decode_alike_aligned_or_not() {
        let exec = encode::exec_resolved(
            encode::header(tripline_common::kind::EXEC, 0, 42),
            "/usr/bin/curl",
            &["curl", "-fsS", "https://example.com"],
            Some(("/usr/bin/curl", 0)),
            Some("/srv"),
        );
        let file = encode::file(
            encode::header(tripline_common::kind::FILE_RENAME, 0, 42),
            "/etc/app.conf.tmp",
            Some("/etc/app.conf"),
            0o644,
            0,
        );
        for record in [exec, file] {
            // u64 words: 8-aligned; one byte in: not.
            let mut words = vec![0u64; record.len() / 8 + 2];
            let buf: &mut [u8] = bytemuck_bytes(&mut words);
            buf[..record.len()].copy_from_slice(&record);
            let aligned = decode(&buf[..record.len()]).unwrap();
            assert_eq!(aligned, decode(&record).unwrap());
            buf[1..=record.len()].copy_from_slice(&record);
            let odd = &buf[1..=record.len()];
            assert!(!(odd.as_ptr() as *const tripline_common::ExecEvent).is_aligned());
            assert_eq!(aligned, decode(odd).unwrap());
        }

        fn bytemuck_bytes(words: &mut [u64]) -> &mut [u8] {
            // SAFETY: u64 has no padding; the byte view covers exactly the words' memory.
            unsafe {
                std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, words.len() * 8)
            }
        }
    }

    #[test]
    fn split_args_edge_cases() {
        assert!(split_args(b"").is_empty());
        assert_eq!(split_args(b"a\0"), vec!["a"]);
        assert_eq!(split_args(b"a\0\0b\0"), vec!["a", "", "b"]);
        assert_eq!(c_string(b"ab\0cd"), "ab");
        // Invalid UTF-8 is replaced, valid text around it kept.
        assert_eq!(split_args(b"a\xffb\0\xc3\xa9"), vec!["a\u{fffd}b", "é"]);
        assert_eq!(c_string(b"\xe2\x82\0"), "\u{fffd}");
    }
}

#[cfg(test)]
mod docs_tests {
    use crate::model::EventKind;

    /// The kinds table of docs/events.md, rendered from the registry.
    fn kinds_table() -> String {
        let mut t = String::from(
            "| Kind (`kind` label) | Event name | Family | Wire id | Meaning |\n|---|---|---|---|---|\n",
        );
        for k in EventKind::ALL {
            t.push_str(&format!(
                "| `{}` | `{}` | {} | {} | {} |\n",
                k.as_str(),
                k.event_name(),
                k.family().name(),
                k.wire(),
                k.description()
            ));
        }
        t
    }

    #[test]
    fn docs_kinds_table_is_generated_from_the_registry() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md");
        let text = std::fs::read_to_string(path).unwrap();
        let (begin, end) = ("<!-- kinds:begin -->\n", "<!-- kinds:end -->");
        let a = text.find(begin).expect("kinds:begin marker") + begin.len();
        let b = text.find(end).expect("kinds:end marker");
        let want = kinds_table();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, format!("{}{want}{}", &text[..a], &text[b..])).unwrap();
            return;
        }
        assert_eq!(
            &text[a..b],
            want,
            "docs/events.md kinds table is stale: run UPDATE_DOCS=1 cargo test -p tripline --lib docs_"
        );
    }
}
