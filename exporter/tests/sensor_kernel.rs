//! The real binary against the real kernel: exec, connect (success and failure), accept and listen over
//! IPv4 and IPv6, asserted field by field on `tripline events` and on `/metrics`.
mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{gettid, i, s, Exporter};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn exec_events_carry_path_argv_user_and_parent() {
    let ex = Exporter::start(&["events"]);
    let before = ex.sample("tripline_events_total{kind=\"exec\"}");
    let marker = format!("tripline-exec-test-{}", std::process::id());
    const N: usize = 5;
    let mut pids = Vec::new();
    for n in 0..N {
        let child = Command::new("/bin/true")
            .args([marker.as_str(), &n.to_string()])
            .spawn()
            .unwrap();
        pids.push(i64::from(child.id()));
        let mut child = child;
        assert!(child.wait().unwrap().success());
    }
    let me = i64::from(std::process::id());
    let my_exe = std::fs::read_link("/proc/self/exe")
        .unwrap()
        .display()
        .to_string();
    for (n, pid) in pids.iter().enumerate() {
        let evs = ex.wait_events("exec of /bin/true", WAIT, |e| {
            s(e, "event.name") == "tripline.process.exec" && i(e, "process.pid") == *pid
        });
        let e = &evs[0];
        // The canonical executable (merged /usr resolves /bin); the spelled path is kept too.
        assert_eq!(
            s(e, "process.executable.path"),
            std::fs::canonicalize("/bin/true")
                .unwrap()
                .display()
                .to_string()
        );
        assert_eq!(s(e, "tripline.exec.filename"), "/bin/true");
        assert_eq!(s(e, "process.executable.name"), "true");
        let args: Vec<String> = serde_json::from_value(e["process.command_args"].clone()).unwrap();
        assert_eq!(
            args,
            vec!["/bin/true".to_string(), marker.clone(), n.to_string()]
        );
        assert_eq!(i(e, "process.user.id"), 0);
        assert_eq!(i(e, "process.real_user.id"), 0);
        assert_eq!(i(e, "process.parent_pid"), me);
        assert_eq!(s(e, "tripline.process.parent.executable.path"), my_exe);
        assert_eq!(e["tripline.process.args_truncated"], Value::Bool(false));
        assert_eq!(s(e, "severity_text"), "INFO");
        assert!(s(e, "time").ends_with('Z'));
        // Its exit follows, with the same identity.
        ex.wait_events("exit of /bin/true", WAIT, |x| {
            s(x, "event.name") == "tripline.process.exit" && i(x, "process.pid") == *pid
        });
    }
    let after = ex.sample("tripline_events_total{kind=\"exec\"}");
    assert!(
        after - before >= N as f64,
        "exec counter rose by {} < {N}",
        after - before
    );
    assert_eq!(ex.stop(), 0, "SIGTERM must exit 0");
}

fn net_roundtrip(ex: &Exporter, loopback: &str) {
    let tid = gettid();
    let bind: SocketAddr = format!("{loopback}:0").parse().unwrap();
    let listener = TcpListener::bind(bind).unwrap();
    let server = listener.local_addr().unwrap();
    let client = TcpStream::connect(server).unwrap();
    let client_addr = client.local_addr().unwrap();
    let (_conn, peer) = listener.accept().unwrap();
    assert_eq!(peer, client_addr);
    // A closed port: bind, learn the port, close, connect.
    let closed = TcpListener::bind(bind).unwrap().local_addr().unwrap();
    let err = TcpStream::connect(closed).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);

    let ip = server.ip().to_string();
    let mine = |e: &Value, name: &str| s(e, "event.name") == name && i(e, "thread.id") == tid;

    let l = ex.wait_events("listen", WAIT, |e| {
        mine(e, "tripline.network.listen") && i(e, "network.local.port") == i64::from(server.port())
    });
    assert_eq!(s(&l[0], "network.local.address"), ip);
    assert_eq!(s(&l[0], "network.transport"), "tcp");
    assert_eq!(
        s(&l[0], "network.type"),
        if server.is_ipv6() { "ipv6" } else { "ipv4" }
    );

    let c = ex.wait_events("connect", WAIT, |e| {
        mine(e, "tripline.network.connect") && i(e, "network.peer.port") == i64::from(server.port())
    });
    assert_eq!(s(&c[0], "network.peer.address"), ip);
    assert_eq!(
        i(&c[0], "network.local.port"),
        i64::from(client_addr.port())
    );
    assert_eq!(i(&c[0], "tripline.network.result"), 0);
    assert_eq!(i(&c[0], "process.pid"), i64::from(std::process::id()));

    let a = ex.wait_events("accept", WAIT, |e| {
        mine(e, "tripline.network.accept")
            && i(e, "network.peer.port") == i64::from(client_addr.port())
    });
    assert_eq!(i(&a[0], "network.local.port"), i64::from(server.port()));
    assert_eq!(s(&a[0], "network.peer.address"), ip);
    assert!(
        i(&a[0], "tripline.network.result") >= 0,
        "accept result is the new fd"
    );

    let f = ex.wait_events("failed connect", WAIT, |e| {
        mine(e, "tripline.network.connect") && i(e, "network.peer.port") == i64::from(closed.port())
    });
    assert_eq!(i(&f[0], "tripline.network.result"), -111);
    assert_eq!(s(&f[0], "error.type"), "ECONNREFUSED");
}

#[test]
fn tcp_connect_accept_listen_ipv4_and_ipv6() {
    let ex = Exporter::start(&["events"]);
    // By default the syscall probes are slots of the dispatcher: raw sys_enter, and sys_exit as a BTF
    // tracepoint (which this kernel loads).
    let log = ex.stderr.lock().unwrap().clone();
    for hook in [
        "probe=connect_enter hook=raw_tracepoint/sys_enter/connect",
        "probe=accept hook=tp_btf/sys_exit/accept",
    ] {
        assert!(log.contains(hook), "{hook} not in {log}");
    }
    let m0 = ex.metrics();
    net_roundtrip(&ex, "127.0.0.1");
    net_roundtrip(&ex, "[::1]");
    let m1 = ex.metrics();
    for kind in ["connect", "accept", "listen"] {
        let series = format!("tripline_events_total{{kind=\"{kind}\"}}");
        let rose = common::sample(&m1, &series) - common::sample(&m0, &series);
        let want = if kind == "connect" { 4.0 } else { 2.0 };
        assert!(rose >= want, "{series} rose by {rose} < {want}");
    }
}

/// A TCP connection opened without connect(2) — sendto with MSG_FASTOPEN — is a connect event too: no
/// syscall exit reports it, so the TCP state machine does (the same path serves io_uring CONNECT).
#[test]
fn fastopen_connection_without_connect_is_a_connect_event() {
    let ex = Exporter::start(&["events"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tid = gettid();
    // SAFETY: plain socket calls on a fresh descriptor with a valid sockaddr_in.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    };
    let sent = unsafe {
        libc::sendto(
            fd,
            b"x".as_ptr() as *const libc::c_void,
            1,
            libc::MSG_FASTOPEN,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    assert!(
        sent == 1 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EINPROGRESS),
        "sendto(MSG_FASTOPEN): {}",
        std::io::Error::last_os_error()
    );
    let (_conn, _) = listener.accept().unwrap();
    let c = ex.wait_events("fastopen connect", WAIT, |e| {
        s(e, "event.name") == "tripline.network.connect"
            && i(e, "thread.id") == tid
            && i(e, "network.peer.port") == i64::from(port)
    });
    assert_eq!(i(&c[0], "tripline.network.result"), 0);
    assert_eq!(i(&c[0], "process.pid"), i64::from(std::process::id()));
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
}

/// An exporter watching an application directory with `sensor.syscall_hooks: <hooks>`, every probe
/// attached, whose attach report has the `shown` line and none of the `absent` hook kinds; and its app
/// directory.
fn start_with_hooks(hooks: &str, shown: &str, absent: &[&str]) -> (Exporter, std::path::PathBuf) {
    let dir = common::test_dir(&format!("syscall-hooks-{hooks}"));
    let (app, config) = common::app_dir_config(&dir);
    let yml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{yml}  syscall_hooks: {hooks}\n")).unwrap();
    let ex = Exporter::start(&["events", "--config.file", config.to_str().unwrap()]);
    let log = ex.stderr.lock().unwrap().clone();
    assert!(log.contains("probes attached; missing: none"), "{log}");
    assert!(log.contains(shown), "{log}");
    for hook in absent {
        assert!(!log.contains(hook), "{hook} in {log}");
    }
    (ex, app)
}

/// `sensor.syscall_hooks: raw_dispatch`: the dispatcher on the raw tracepoints at both ends (the exit
/// dispatcher's fallback where BTF tracepoints do not load) delivers connect, accept and open exits.
#[test]
fn raw_exit_dispatcher_when_configured() {
    let (ex, app) = start_with_hooks(
        "raw_dispatch",
        "probe=accept hook=raw_tracepoint/sys_exit/accept",
        &["tp_btf/sys_exit/"],
    );
    net_roundtrip(&ex, "127.0.0.1");
    let path = app.join("raw-open.txt");
    std::fs::write(&path, b"x").unwrap();
    let tid = gettid();
    let e = ex.wait_events("open for writing", WAIT, |e| {
        s(e, "event.name") == "tripline.file.write" && i(e, "thread.id") == tid
    });
    assert_eq!(s(&e[0], "file.path"), path.display().to_string());
}

/// `sensor.syscall_hooks: tracepoints`: the same events through one `syscalls:` tracepoint per syscall.
#[test]
fn syscall_probes_attach_as_tracepoints_when_configured() {
    let (ex, app) = start_with_hooks(
        "tracepoints",
        "probe=connect_enter hook=tracepoint/syscalls/sys_enter_connect",
        &["raw_tracepoint/", "tp_btf/sys_exit/"],
    );
    net_roundtrip(&ex, "127.0.0.1");
    // A syscall of the tamper family (entry reads a user string, exit adds the result).
    let pid = common::run_ok(
        "/usr/bin/python3",
        &[
            "-c",
            "import os\nos.memfd_create('tripline-tp-memfd')\nprint(os.getpid())",
        ],
    );
    let e = ex.wait_events("memfd_create", WAIT, |e| {
        s(e, "event.name") == "tripline.process.memfd_create" && i(e, "process.pid") == pid
    });
    assert_eq!(s(&e[0], "tripline.syscall.target"), "tripline-tp-memfd");
    // An open for writing: its arguments are parked at entry and judged with the file at exit.
    let path = app.join("tp-open.txt");
    let spelled = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            spelled.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
            0o640,
        )
    };
    assert!(fd >= 0);
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    let tid = gettid();
    let e = ex.wait_events("open for writing", WAIT, |e| {
        s(e, "event.name") == "tripline.file.write" && i(e, "thread.id") == tid
    });
    assert_eq!(s(&e[0], "file.path"), path.display().to_string());
    assert_eq!(
        i(&e[0], "tripline.file.flags"),
        i64::from(libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND)
    );
    assert_eq!(s(&e[0], "file.mode"), "0640");
    assert_eq!(
        s(&e[0], "tripline.file.spelled_path"),
        path.display().to_string()
    );
}

/// A 32-bit syscall through `int 0x80` from this 64-bit test: number `nr`, arguments in ebx, ecx, edx,
/// with rdi set too (a 64-bit probe reading the wrong registers would see it).
#[cfg(target_arch = "x86_64")]
fn int80(nr: i64, bx: u64, cx: u64, dx: u64, di: u64) -> i64 {
    let ret: i64;
    // SAFETY: the callers pass arguments valid for the 32-bit syscall they make. rbx is reserved by the
    // compiler, so the argument is swapped in and out around the call; the kernel zeroes r8-r11 on
    // int 0x80 from a 64-bit task, so they are declared clobbered.
    unsafe {
        core::arch::asm!(
            "xchg {b}, rbx",
            "int 0x80",
            "xchg {b}, rbx",
            b = inout(reg) bx => _,
            inlateout("rax") nr => ret,
            in("rcx") cx,
            in("rdx") dx,
            in("rdi") di,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    ret
}

/// 32-bit syscalls (`int 0x80`, 32-bit programs) never fire the `syscalls:` tracepoints; the dispatcher
/// sends them to the same probes with their own numbers and registers. A 32-bit open for writing of a
/// watched file is a `file_write`; number 62 (`ustat` there, `kill` in 64-bit) is not read as a signal
/// to tripline.
#[cfg(target_arch = "x86_64")]
#[test]
fn compat_syscalls_are_seen_with_their_own_numbers_and_registers() {
    let dir = common::test_dir("compat");
    let (app, config) = common::app_dir_config(&dir);
    let ex = Exporter::start(&["events", "--config.file", config.to_str().unwrap()]);
    let me = i64::from(ex.child.id());
    let tid = gettid();

    // The path must be addressable with 32 bits.
    let path = app.join("compat-open.txt");
    let text = format!("{}\0", path.display());
    // SAFETY: a fresh private anonymous mapping below 2 GiB, written within its length.
    let low = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(text.as_ptr(), p as *mut u8, text.len());
        p as u64
    };
    assert!(low < 1 << 32);
    const IA32_OPEN: i64 = 5;
    const IA32_CLOSE: i64 = 6;
    const IA32_USTAT: i64 = 62;
    let fd = int80(
        IA32_OPEN, low, 0o101, /* O_WRONLY|O_CREAT */
        0o600, me as u64,
    );
    assert!(fd >= 0, "32-bit open failed: {fd}");
    assert_eq!(int80(IA32_CLOSE, fd as u64, 0, 0, 0), 0);
    let e = ex.wait_events("32-bit open for writing", WAIT, |e| {
        s(e, "event.name") == "tripline.file.write" && i(e, "thread.id") == tid
    });
    assert_eq!(s(&e[0], "file.path"), path.display().to_string());
    // The path comes from the kernel's objects; flags, mode and the spelling from the call's arguments,
    // read in the 32-bit ABI.
    assert_eq!(i(&e[0], "tripline.file.flags"), 0o101, "{:?}", e[0]);
    assert_eq!(s(&e[0], "file.mode"), "0600");
    assert_eq!(
        s(&e[0], "tripline.file.spelled_path"),
        path.display().to_string()
    );

    assert!(int80(IA32_USTAT, 0, 0, 0, me as u64) < 0);
    // Positive control from the same thread: a real 64-bit kill(tripline, 0).
    // SAFETY: signal 0 only checks the target exists.
    assert_eq!(unsafe { libc::kill(me as i32, 0) }, 0);
    ex.wait_events("64-bit kill", WAIT, |e| {
        s(e, "event.name") == "tripline.kernel.signal_tripline" && i(e, "thread.id") == tid
    });
    let all = ex.events_where(|e| {
        s(e, "event.name") == "tripline.kernel.signal_tripline" && i(e, "thread.id") == tid
    });
    assert_eq!(all.len(), 1, "the 32-bit call was read as kill: {all:?}");
}

#[test]
fn tiny_ring_buffer_loses_events_and_counts_them() {
    // 4096 bytes cannot hold one exec record (~4.7 KiB): every exec is lost in the kernel, counted.
    let ex = Exporter::start(&["events", "--sensor.ring-buffer-bytes", "4096"]);
    let lost0 = ex.sample("tripline_events_lost_total{stage=\"kernel\"}");
    let marker = format!("tripline-lost-test-{}", std::process::id());
    const N: usize = 20;
    for _ in 0..N {
        Command::new("/bin/true").arg(&marker).status().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let lost1 = ex.sample("tripline_events_lost_total{stage=\"kernel\"}");
    assert!(
        lost1 - lost0 >= N as f64,
        "kernel losses rose by {} < {N}",
        lost1 - lost0
    );
    let delivered = ex.events_where(|e| {
        s(e, "event.name") == "tripline.process.exec"
            && e["process.command_args"].to_string().contains(&marker)
    });
    assert!(
        delivered.is_empty(),
        "an exec record cannot fit a 4096-byte ring"
    );
}

#[test]
fn bad_flag_values_exit_non_zero_with_clear_errors() {
    let out = Command::new(common::BIN)
        .args(["--web.listen-address", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an address"), "{err}");

    let out = Command::new(common::BIN)
        .args(["check-config", "--sensor.ring-buffer-bytes", "5000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sensor.ring_buffer_bytes: 5000 is not allowed"),
        "{err}"
    );
}

#[test]
fn secrets_in_argv_are_redacted_before_any_output() {
    let ex = Exporter::start(&["events"]);
    let child = Command::new("/bin/echo")
        .args(["--password=hunter2", "https://bob:s3cr3t@example.invalid/x"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = i64::from(child.id());
    let mut child = child;
    child.wait().unwrap();
    let evs = ex.wait_events("exec of echo", WAIT, |e| {
        s(e, "event.name") == "tripline.process.exec" && i(e, "process.pid") == pid
    });
    let args: Vec<String> = serde_json::from_value(evs[0]["process.command_args"].clone()).unwrap();
    assert_eq!(
        args,
        vec![
            "/bin/echo",
            "--password=[REDACTED]",
            "https://bob:[REDACTED]@example.invalid/x"
        ]
    );
    let all = ex.events_where(|e| i(e, "process.pid") == pid);
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("s3cr3t"),
        "a secret leaked: {text}"
    );
    assert!(ex.sample("tripline_redactions_total{pattern=\"flag_value\"}") >= 1.0);
    assert!(ex.sample("tripline_redactions_total{pattern=\"url_credentials\"}") >= 1.0);
}
