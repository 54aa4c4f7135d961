//! Kernel-resolved file paths on the real kernel: every spelling and alias of a watched file reaches the
//! same canonical path (`.`/`..`, /proc/self/root, a symlinked directory, a bind mount, a hard link made
//! before tripline started), the syscalls without a path string (ftruncate, fchmod, fchown, fsetxattr,
//! openat2, fchmodat2, open_by_handle_at, truncate, setxattr), io_uring writes, setid modes and file
//! capabilities anywhere, and reads of credential stores.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{i, s, Exporter};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// A watched directory under /var/lib (same filesystem as /tmp on the test hosts, so hard links work).
fn watched_dir(tag: &str) -> PathBuf {
    let d = Path::new("/var/lib").join(format!("tripline-res-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    let f = dir.with_extension("yml");
    std::fs::write(
        &f,
        format!("sensor:\n  app_dirs: [{}]\n{extra}", dir.display()),
    )
    .unwrap();
    f
}

/// Runs a Python script; returns its pid.
fn python(script: &str) -> i64 {
    let mut c = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .spawn()
        .unwrap();
    let pid = i64::from(c.id());
    assert!(c.wait().unwrap().success(), "{script}");
    pid
}

/// A finding raised by `rule`, alone or as one part of a process's correlated finding.
fn fired(f: &Value, rule: &str) -> bool {
    s(f, "security_rule.name") == rule
        || f["tripline.finding.rules"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r.as_str() == Some(rule)))
}

fn from(e: &Value, pid: i64) -> bool {
    i(e, "process.pid") == pid || i(e, "process.parent_pid") == pid
}

/// The event `name` from `pid` on `path` by `operation`.
fn expect(ex: &Exporter, pid: i64, name: &str, path: &str, operation: &str) -> Value {
    let seen: Vec<String> = ex
        .events_where(|e| from(e, pid) && s(e, "event.name").starts_with("tripline.file."))
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                s(e, "event.name"),
                s(e, "tripline.file.operation"),
                s(e, "file.path")
            )
        })
        .collect();
    let what = format!("{name} {operation} {path} (seen so far: {seen:?})");
    ex.wait_events(&what, WAIT, |e| {
        from(e, pid)
            && s(e, "event.name") == name
            && s(e, "file.path") == path
            && s(e, "tripline.file.operation") == operation
    })
    .remove(0)
}

#[test]
fn every_spelling_and_alias_resolves_to_the_canonical_path() {
    common::require_root();
    let w = watched_dir("alias");
    let wd = w.display().to_string();
    let tag = std::process::id();
    std::fs::write(w.join("target"), "0").unwrap();
    // Made before tripline starts: a hard link outside the watched paths, a symlinked directory and a
    // bind mount of the watched directory.
    let hard = PathBuf::from(format!("/tmp/tripline-hl-{tag}"));
    let sym = PathBuf::from(format!("/tmp/tripline-sym-{tag}"));
    let bind = PathBuf::from(format!("/tmp/tripline-bind-{tag}"));
    let _ = std::fs::remove_file(&hard);
    let _ = std::fs::remove_file(&sym);
    std::fs::hard_link(w.join("target"), &hard).unwrap();
    std::os::unix::fs::symlink(&w, &sym).unwrap();
    std::fs::create_dir_all(&bind).unwrap();
    assert!(Command::new("mount")
        .args(["--bind", &wd, bind.to_str().unwrap()])
        .status()
        .unwrap()
        .success());
    // Another filesystem mounted inside the watched directory (its files resolve through the mount
    // point), and one mounted outside every watched path (the walk rules its files out by their first
    // component before writing the rest of the path).
    let inner = w.join("tmpfs");
    let outer = PathBuf::from(format!("/tmp/tripline-tmpfs-{tag}"));
    for d in [&inner, &outer] {
        std::fs::create_dir_all(d).unwrap();
        assert!(Command::new("mount")
            .args(["-t", "tmpfs", "tripline-test", d.to_str().unwrap()])
            .status()
            .unwrap()
            .success());
    }
    let cfg = config(&w, "");
    let ex = Exporter::start(&["events", "--config.file", cfg.to_str().unwrap()]);

    let rel = wd.trim_start_matches('/');
    let pid = python(&format!(
        r#"
import os, ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
def w(p): open(p, "w").write("x")
os.makedirs("{outer}/deep/er", exist_ok=True)
w("{outer}/deep/er/unwatched")
w("/tmp/tripline-unwatched-{tag}")
w("{wd}/tmpfs/mounted")
w("{wd}/./dot")
w("/tmp/../{rel}/dotdot")
w("/proc/self/root/{rel}/procroot")
w("{sym}/symdir")
w("{bind}/bound")
open("{hard}", "a").write("x")
os.truncate("{wd}/target", 0)
fd = os.open("{wd}/target", os.O_RDWR)
os.ftruncate(fd, 1)
os.fchmod(fd, 0o640)
os.fchown(fd, 0, 0)
os.setxattr(fd, "user.tripline", b"1")
os.close(fd)
os.setxattr("{wd}/target", "user.other", b"2")
# openat2(AT_FDCWD, path, &open_how{{flags, mode, resolve}}, 24)
how = struct.pack("QQQ", os.O_WRONLY | os.O_CREAT, 0o600, 0)
r = libc.syscall(437, -100, b"{wd}/viaopenat2", ctypes.c_char_p(how), 24)
assert r >= 0, ctypes.get_errno()
os.close(r)
# fchmodat2(AT_FDCWD, path, mode, 0)
assert libc.syscall(452, -100, b"{wd}/target", 0o600, 0) == 0, ctypes.get_errno()
# name_to_handle_at + open_by_handle_at(mount fd, handle, O_WRONLY)
fh = ctypes.create_string_buffer(8 + 128)
struct.pack_into("I", fh, 0, 128)
mnt = ctypes.c_int()
# (a file with one name: a handle of a hard-linked file may decode to any of its names)
assert libc.syscall(303, -100, b"{wd}/viaopenat2", fh, ctypes.byref(mnt), 0) == 0, ctypes.get_errno()
mfd = os.open("/", os.O_RDONLY)
r = libc.syscall(304, mfd, fh, os.O_WRONLY)
assert r >= 0, ctypes.get_errno()
os.close(r)
"#,
        sym = sym.display(),
        bind = bind.display(),
        hard = hard.display(),
        outer = outer.display(),
    ));

    let write = "tripline.file.write";
    for (name, spelled) in [
        ("dot", format!("{wd}/./dot")),
        ("dotdot", format!("/tmp/../{rel}/dotdot")),
        ("procroot", format!("/proc/self/root/{rel}/procroot")),
        ("symdir", format!("{}/symdir", sym.display())),
        ("bound", format!("{}/bound", bind.display())),
    ] {
        let e = expect(&ex, pid, write, &format!("{wd}/{name}"), "openat");
        assert_eq!(s(&e, "tripline.file.spelled_path"), spelled);
        assert_eq!(e["tripline.file.kernel_resolved"], Value::Bool(true));
        assert_eq!(i(&e, "process.user.id"), 0);
        assert!(
            s(&e, "process.executable.name").starts_with("python3"),
            "{e}"
        );
    }
    expect(&ex, pid, write, &format!("{wd}/tmpfs/mounted"), "openat");
    // The hard link: reported under the name used, matched by the watched file's inode.
    let e = expect(&ex, pid, write, &hard.display().to_string(), "openat");
    assert_eq!(e["tripline.file.matched_by_inode"], Value::Bool(true));
    let target = format!("{wd}/target");
    expect(&ex, pid, write, &target, "truncate");
    expect(&ex, pid, write, &target, "ftruncate");
    let e = expect(&ex, pid, "tripline.file.chmod", &target, "fchmod");
    assert_eq!(s(&e, "file.mode"), "0640");
    expect(&ex, pid, "tripline.file.chown", &target, "fchown");
    let e = expect(&ex, pid, "tripline.file.xattr", &target, "fsetxattr");
    assert_eq!(s(&e, "tripline.file.xattr_name"), "user.tripline");
    let e = expect(&ex, pid, "tripline.file.xattr", &target, "setxattr");
    assert_eq!(s(&e, "tripline.file.xattr_name"), "user.other");
    expect(&ex, pid, write, &format!("{wd}/viaopenat2"), "openat2");
    expect(&ex, pid, "tripline.file.chmod", &target, "fchmodat2");
    expect(
        &ex,
        pid,
        write,
        &format!("{wd}/viaopenat2"),
        "open_by_handle_at",
    );

    // Written before every event above, outside the watched paths: never sent (dropped in the kernel, and
    // again by userspace's exact match: this checks the outcome; what the kernel filter must not drop is
    // checked by the writes above).
    let unwatched = ex.events_where(|e| {
        from(e, pid) && s(e, "file.path").contains(&format!("tripline-unwatched-{tag}"))
            || s(e, "file.path").starts_with(&outer.display().to_string())
    });
    assert!(unwatched.is_empty(), "{unwatched:?}");
    assert!(ex.sample("tripline_file_events_filtered_total") >= 2.0);
    // Resolution never failed on these.
    assert_eq!(
        ex.sample("tripline_file_path_resolution_failures_total{reason=\"too_deep\"}"),
        0.0
    );
    for d in [&bind, &inner, &outer] {
        let _ = Command::new("umount").arg(d).status();
        let _ = std::fs::remove_dir(d);
    }
    let _ = std::fs::remove_file(&sym);
    let _ = std::fs::remove_file(&hard);
    let _ = std::fs::remove_dir_all(&w);
    let _ = std::fs::remove_file(&cfg);
}

/// A raw-syscall io_uring client: creates a ring, OPENAT (write, create) of argv[1], then WRITE to the
/// returned fd.
const URING_C: &str = r#"
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
static int ring_fd; static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes; static struct io_uring_cqe *cqes;
static int submit(struct io_uring_sqe *src) {
  unsigned t = *sq_tail, i = t & *sq_mask;
  sqes[i] = *src; sq_array[i] = i;
  __atomic_store_n(sq_tail, t + 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, ring_fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) { perror("enter"); exit(2); }
  unsigned h = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
  if (h == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) { fprintf(stderr, "no cqe\n"); exit(3); }
  int res = cqes[h & *cq_mask].res;
  __atomic_store_n(cq_head, h + 1, __ATOMIC_RELEASE);
  return res;
}
int main(int argc, char **argv) {
  struct io_uring_params p; memset(&p, 0, sizeof p);
  ring_fd = syscall(__NR_io_uring_setup, 4, &p);
  if (ring_fd < 0) { perror("setup"); return 1; }
  char *sq = mmap(0, p.sq_off.array + p.sq_entries * 4, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  char *cq = mmap(0, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
  sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, ring_fd, IORING_OFF_SQES);
  sq_tail = (unsigned *)(sq + p.sq_off.tail); sq_mask = (unsigned *)(sq + p.sq_off.ring_mask); sq_array = (unsigned *)(sq + p.sq_off.array);
  cq_head = (unsigned *)(cq + p.cq_off.head); cq_tail = (unsigned *)(cq + p.cq_off.tail); cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
  struct io_uring_sqe s; memset(&s, 0, sizeof s);
  s.opcode = IORING_OP_OPENAT; s.fd = AT_FDCWD; s.addr = (unsigned long)argv[1]; s.open_flags = O_WRONLY|O_CREAT; s.len = 0644;
  int fd = submit(&s);
  if (fd < 0) { fprintf(stderr, "openat %d\n", fd); return 4; }
  static const char msg[] = "via io_uring\n";
  memset(&s, 0, sizeof s);
  s.opcode = IORING_OP_WRITE; s.fd = fd; s.addr = (unsigned long)msg; s.len = sizeof msg - 1; s.off = 0;
  int n = submit(&s);
  if (n < 0) { fprintf(stderr, "write %d\n", n); return 5; }
  return 0;
}
"#;

#[test]
fn io_uring_open_and_write_of_a_watched_file() {
    common::require_root();
    let w = watched_dir("uring");
    let src = w.with_extension("c");
    let bin = std::env::temp_dir().join(format!("tripline-uring-{}", std::process::id()));
    std::fs::write(&src, URING_C).unwrap();
    let cc = Command::new("cc")
        .args(["-O1", "-o", bin.to_str().unwrap(), src.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(cc.success(), "cc failed");
    let cfg = config(&w, "");
    let ex = Exporter::start(&["events", "--config.file", cfg.to_str().unwrap()]);
    // First the same writes outside every watched path: never sent (the probe drops them by their first
    // component, and userspace matches paths exactly again, so this checks the outcome, not the layer).
    let outside = format!("/tmp/tripline-uring-unwatched-{}", std::process::id());
    let mut c = Command::new(&bin).arg(&outside).spawn().unwrap();
    let outside_pid = i64::from(c.id());
    assert!(c.wait().unwrap().success(), "io_uring helper failed");
    let target = format!("{}/ring", w.display());
    let mut c = Command::new(&bin).arg(&target).spawn().unwrap();
    let pid = i64::from(c.id());
    assert!(c.wait().unwrap().success(), "io_uring helper failed");

    let setup = ex.wait_events("io_uring setup", WAIT, |e| {
        from(e, pid) && s(e, "event.name") == "tripline.process.io_uring_setup"
    });
    assert_eq!(i(&setup[0], "tripline.io_uring.sq_entries"), 4);
    for op in ["OPENAT", "WRITE"] {
        ex.wait_events(&format!("io_uring {op}"), WAIT, |e| {
            from(e, pid)
                && s(e, "event.name") == "tripline.process.io_uring_op"
                && s(e, "tripline.io_uring.opcode") == op
        });
        let e = ex.wait_events(&format!("file write via io_uring {op}"), WAIT, |e| {
            from(e, pid)
                && s(e, "event.name") == "tripline.file.write"
                && s(e, "tripline.io_uring.opcode") == op
        });
        assert_eq!(s(&e[0], "file.path"), target);
        assert_eq!(s(&e[0], "tripline.file.operation"), "io_uring");
        assert_eq!(i(&e[0], "process.user.id"), 0);
    }
    let f = ex.wait_events("io_uring write finding", WAIT, |f| {
        fired(f, "watched_file_written_through_io_uring") && from(f, pid)
    });
    assert!(
        common::part_texts(&f[0])
            .iter()
            .any(|p| p.contains(&target)),
        "{}",
        f[0]
    );
    let unwatched =
        ex.events_where(|e| from(e, outside_pid) && s(e, "event.name") == "tripline.file.write");
    assert!(unwatched.is_empty(), "{unwatched:?}");
    let _ = std::fs::remove_dir_all(&w);
    let _ = std::fs::remove_file(&outside);
    for f in [src, bin, cfg] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn setid_bits_capabilities_and_credential_reads_anywhere() {
    common::require_root();
    let tag = std::process::id();
    let suid = PathBuf::from(format!("/tmp/tripline-suid-{tag}"));
    let capf = PathBuf::from(format!("/tmp/tripline-cap-{tag}"));
    std::fs::copy("/usr/bin/true", &suid).unwrap();
    std::fs::copy("/usr/bin/true", &capf).unwrap();
    // Outside every watched path, in /tmp.
    let ex = Exporter::start(&["events"]);
    let pid = common::run_ok(
        "/bin/sh",
        &[
            "-c",
            &format!(
                "chmod 4755 {} && setcap cap_net_raw+ep {} && exec /usr/bin/python3 -c \"open('/etc/shadow').read()\"",
                suid.display(),
                capf.display()
            ),
        ],
    );
    let suid_s = suid.display().to_string();
    let e = ex.wait_events("setuid chmod", WAIT, |e| {
        from(e, pid) && s(e, "event.name") == "tripline.file.chmod" && s(e, "file.path") == suid_s
    });
    assert_eq!(s(&e[0], "file.mode"), "4755");
    assert_eq!(e[0]["tripline.file.setid_mode"], Value::Bool(true));
    ex.wait_events("setid_bit_set finding", WAIT, |f| {
        fired(f, "setid_bit_set") && common::part_texts(f).iter().any(|p| p.contains(&suid_s))
    });
    let cap_s = capf.display().to_string();
    let e = ex.wait_events("file capability", WAIT, |e| {
        s(e, "event.name") == "tripline.file.xattr"
            && s(e, "file.path") == cap_s
            && s(e, "tripline.file.xattr_name") == "security.capability"
    });
    assert_eq!(s(&e[0], "process.executable.name"), "setcap");
    ex.wait_events("file_capability_set finding", WAIT, |f| {
        fired(f, "file_capability_set") && common::part_texts(f).iter().any(|p| p.contains(&cap_s))
    });
    // /etc/shadow read by an interpreter: a sensitive_read with its class, and a finding.
    let e = ex.wait_events("shadow read", WAIT, |e| {
        from(e, pid)
            && s(e, "event.name") == "tripline.file.sensitive_read"
            && s(e, "file.path") == "/etc/shadow"
    });
    assert_eq!(s(&e[0], "tripline.file.sensitive_class"), "account_shadow");
    assert_eq!(i(&e[0], "process.user.id"), 0);
    ex.wait_events("credential read finding", WAIT, |f| {
        fired(f, "credential_store_read_by_interpreter")
            && common::part_texts(f)
                .iter()
                .any(|p| p.contains("/etc/shadow"))
            && from(f, pid)
    });
    let _ = std::fs::remove_file(&suid);
    let _ = std::fs::remove_file(&capf);
}
