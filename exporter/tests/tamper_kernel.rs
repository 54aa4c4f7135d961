//! Privilege changes and kernel tampering on the real kernel: ptrace attach, a BPF program load attempt,
//! a signal to tripline, memfd_create, mount/umount, and a process regaining root through setresuid.
mod common;

use std::process::Command;
use std::time::Duration;

use common::{i, s, Exporter};

const WAIT: Duration = Duration::from_secs(20);

fn python(script: &str) -> i64 {
    common::run_ok("/usr/bin/python3", &["-c", script])
}

#[test]
fn tampering_and_privilege_events_with_findings() {
    let ex = Exporter::start(&["events"]);
    let mine = |pid: i64| move |e: &serde_json::Value| i(e, "process.pid") == pid;

    // ptrace attach to our own child, then detach.
    let pid = python(
        "import ctypes,subprocess,time\nlibc=ctypes.CDLL(None)\nc=subprocess.Popen(['sleep','5'])\n\
         assert libc.ptrace(16,c.pid,0,0)==0\ntime.sleep(0.1)\nlibc.ptrace(17,c.pid,0,0)\nc.kill()\nprint(c.pid)",
    );
    let e = ex.wait_events("ptrace", WAIT, |e| {
        s(e, "event.name") == "tripline.kernel.ptrace" && mine(pid)(e)
    });
    assert_eq!(i(&e[0], "tripline.ptrace.request"), 16);
    assert_eq!(i(&e[0], "tripline.syscall.result"), 0);
    ex.wait_events("ptrace rule", WAIT, |e| {
        s(e, "security_rule.name") == "ptrace_attach_or_poke" && mine(pid)(e)
    });

    // A BPF_PROG_LOAD attempt with a bad attribute pointer: reported, with its error.
    let pid = python("import ctypes\nassert ctypes.CDLL(None).syscall(321,5,0,0)==-1");
    let e = ex.wait_events("bpf load", WAIT, |e| {
        s(e, "event.name") == "tripline.kernel.bpf_load" && mine(pid)(e)
    });
    assert_eq!(i(&e[0], "tripline.bpf.command"), 5);
    assert!(i(&e[0], "tripline.syscall.result") < 0);

    // Signal 0 to tripline (harmless liveness probe): reported and matched.
    let me = ex.child.id();
    let mut k = Command::new("kill")
        .args(["-0", &me.to_string()])
        .spawn()
        .unwrap();
    let kpid = i64::from(k.id());
    assert!(k.wait().unwrap().success());
    let e = ex.wait_events("signal to tripline", WAIT, |e| {
        s(e, "event.name") == "tripline.kernel.signal_tripline"
            && (mine(kpid)(e) || i(e, "process.parent_pid") == kpid)
    });
    assert_eq!(i(&e[0], "tripline.signal.target_pid"), i64::from(me));
    assert_eq!(i(&e[0], "tripline.signal.number"), 0);

    // memfd_create with a name.
    let pid = python("import os\nos.memfd_create('tripline-test-memfd')");
    let e = ex.wait_events("memfd_create", WAIT, |e| {
        s(e, "event.name") == "tripline.process.memfd_create" && mine(pid)(e)
    });
    assert_eq!(s(&e[0], "tripline.syscall.target"), "tripline-test-memfd");

    // mount and umount a tmpfs on a test directory.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mnt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    assert!(Command::new("mount")
        .args(["-t", "tmpfs", "trtest", &d])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("umount").arg(&d).status().unwrap().success());
    let e = ex.wait_events("mount", WAIT, |e| {
        s(e, "event.name") == "tripline.kernel.mount" && s(e, "tripline.syscall.target") == d
    });
    assert_eq!(s(&e[0], "tripline.syscall.source"), "trtest");
    ex.wait_events("umount", WAIT, |e| {
        s(e, "event.name") == "tripline.kernel.umount" && s(e, "tripline.syscall.target") == d
    });
    ex.wait_events("mount rule", WAIT, |e| {
        s(e, "security_rule.name") == "filesystem_mounted"
    });
    let _ = std::fs::remove_dir(&dir);

    // Root drops its effective uid, then takes root back through the saved uid.
    let pid = python("import os\nos.setresuid(-1, 65534, -1)\nos.setresuid(-1, 0, -1)");
    let e = ex.wait_events("regain root", WAIT, |e| {
        s(e, "event.name") == "tripline.privilege.change"
            && mine(pid)(e)
            && i(e, "tripline.privilege.new_user.id") == 0
    });
    assert_eq!(
        i(&e[0], "process.user.id"),
        65534,
        "effective uid before the call"
    );
    assert_eq!(i(&e[0], "tripline.privilege.requested.effective_id"), 0);
    assert_eq!(i(&e[0], "tripline.privilege.requested.real_id"), -1);
    let f = ex.wait_events("uid_became_root rule", WAIT, |e| {
        s(e, "security_rule.name") == "uid_became_root_outside_login_paths" && mine(pid)(e)
    });
    assert_eq!(s(&f[0], "severity_text"), "FATAL");
}

/// A socket duplicated onto stdin/stdout is seen whatever the call (dup2, dup, fcntl F_DUPFD), and a
/// shell that wires itself to a connection without executing anything matches the reverse-shell rule;
/// redirections to files and pipes are not events.
#[test]
fn sockets_duplicated_onto_stdio() {
    let ex = Exporter::start(&["events"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = std::thread::spawn(move || {
        // Hold every connection open until the shells are done with it.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(listener.accept().unwrap().0);
        }
        std::thread::sleep(Duration::from_secs(2));
    });
    let dup = |pid: i64, call: &'static str| {
        move |e: &serde_json::Value| {
            s(e, "event.name") == "tripline.process.stdio_socket"
                && i(e, "process.pid") == pid
                && s(e, "tripline.syscall.name") == call
        }
    };

    // bash redirecting its own stdin and stdout to /dev/tcp: two dup2 calls, no exec after them.
    let sh = common::run_ok(
        "/bin/bash",
        &[
            "-c",
            &format!("exec 0<>/dev/tcp/127.0.0.1/{port} 1>&0; exec 3>/dev/null 2>&3; true"),
        ],
    );
    let e = ex.wait_events("dup2 onto stdout", WAIT, |e| {
        dup(sh, "dup2")(e) && i(e, "tripline.stdio.fd") == 1
    });
    assert_eq!(
        e[0]["tripline.stdio.socket_fds"],
        serde_json::json!(["0", "1"])
    );
    assert_eq!(
        e[0]["tripline.process.stdio_socket"],
        serde_json::json!(true)
    );
    ex.wait_events("reverse shell rule", WAIT, |e| {
        s(e, "security_rule.name") == "reverse_shell_stdio_socket" && i(e, "process.pid") == sh
    });
    // fd 2 went to /dev/null, not a socket: no event for it.
    assert!(ex
        .events_where(|e| dup(sh, "dup2")(e) && i(e, "tripline.stdio.fd") == 2)
        .is_empty());

    // C style: close stdin, dup(2) lands on it; fcntl(F_DUPFD, 0) lands on the lowest free fd (Python's
    // os.dup is F_DUPFD_CLOEXEC, so libc's dup is called directly).
    let py = python(&format!(
        "import ctypes,os,socket,fcntl\ns=socket.create_connection(('127.0.0.1',{port}))\n\
         os.close(0)\nassert ctypes.CDLL(None).dup(s.fileno())==0\n\
         t=socket.create_connection(('127.0.0.1',{port}))\n\
         os.close(1)\nassert fcntl.fcntl(t.fileno(),fcntl.F_DUPFD,0)==1\nos.close(1)\n"
    ));
    ex.wait_events("dup onto stdin", WAIT, |e| {
        dup(py, "dup")(e) && i(e, "tripline.stdio.fd") == 0
    });
    ex.wait_events("F_DUPFD onto stdout", WAIT, |e| {
        dup(py, "fcntl")(e) && i(e, "tripline.stdio.fd") == 1
    });

    // A program executed with stdin and stdout on a connection (the `nc -e`, `socat exec:` shape),
    // gone long before procfs could be asked: the exec probe's own look at fds 0 and 1 answers.
    let py = python(&format!(
        "import socket,subprocess\ns=socket.create_connection(('127.0.0.1',{port}))\n\
         subprocess.run(['/bin/true','sock'],stdin=s,stdout=s,check=True)\n\
         subprocess.run(['/bin/true','pipe'],stdin=subprocess.PIPE,stdout=subprocess.PIPE,check=True)\n"
    ));
    let exec_of = |arg: &'static str| {
        move |e: &serde_json::Value| {
            s(e, "event.name") == "tripline.process.exec"
                && i(e, "process.parent_pid") == py
                && e["process.command_args"][1] == arg
        }
    };
    let e = ex.wait_events("exec on a socket", WAIT, exec_of("sock"));
    assert_eq!(
        e[0]["tripline.process.stdio_socket"],
        serde_json::json!(true),
        "{}",
        e[0]
    );
    let e = ex.wait_events("exec on pipes", WAIT, exec_of("pipe"));
    assert!(
        e[0].get("tripline.process.stdio_socket").is_none(),
        "{}",
        e[0]
    );
    accept.join().unwrap();
}

/// Module loads are hooked by syscall number, so an attempt is seen even on a kernel without module
/// support (these hosts: the call fails with ENOSYS; elsewhere a file that is not a module fails the ELF
/// check). finit_module names the file (resolved in the kernel from the fd) and its parameters;
/// init_module has only an image in memory. Both match `kernel_module_load`.
#[test]
fn module_load_attempts_are_seen_where_the_kernel_has_no_module_support() {
    let ex = Exporter::start(&["events"]);
    let mine = |pid: i64| move |e: &serde_json::Value| i(e, "process.pid") == pid;
    let pid = python(
        "import ctypes,os\nl=ctypes.CDLL(None,use_errno=True)\nfd=os.open('/bin/true',os.O_RDONLY)\n\
         assert l.syscall(313,fd,b'gameday=1',0)==-1\nos.close(fd)\nimg=ctypes.create_string_buffer(64)\n\
         assert l.syscall(175,img,64,b'p=2')==-1\nprint(os.getpid())",
    );
    let e = ex.wait_events("finit_module", WAIT, |e| {
        s(e, "event.name") == "tripline.kernel.module_load"
            && s(e, "tripline.file.operation") == "finit_module"
            && mine(pid)(e)
    });
    assert_eq!(s(&e[0], "file.path"), "/usr/bin/true");
    assert_eq!(s(&e[0], "tripline.module.params"), "gameday=1");
    assert!(i(&e[0], "tripline.file.result") < 0);
    let e = ex.wait_events("init_module", WAIT, |e| {
        s(e, "event.name") == "tripline.kernel.module_load"
            && s(e, "tripline.file.operation") == "init_module"
            && mine(pid)(e)
    });
    assert_eq!(s(&e[0], "file.path"), "");
    assert_eq!(s(&e[0], "tripline.module.params"), "p=2");
    let f = ex.wait_events("kernel_module_load rule", WAIT, |e| {
        s(e, "security_rule.name") == "kernel_module_load" && mine(pid)(e)
    });
    assert_eq!(s(&f[0], "severity_text"), "ERROR");
}
