//! File-integrity events on the real kernel, triggered as root and as an unprivileged user created by the
//! test: exact fields, the in-kernel filter, and the app-directory (path ownership) rule.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{i, s, Exporter};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

struct TestUser {
    name: String,
    uid: u32,
}

impl TestUser {
    fn create(tag: &str) -> TestUser {
        let name = format!("tr{tag}{}", std::process::id() % 100_000);
        let _ = Command::new("userdel").arg(&name).status();
        let ok = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/bin/sh", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "useradd failed");
        let out = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        TestUser { name, uid }
    }

    /// Runs `sh -c script` as this user; returns the shell's pid.
    fn sh(&self, script: &str) -> i64 {
        let mut c = Command::new("setpriv")
            .args([
                &format!("--reuid={}", self.uid),
                &format!("--regid={}", self.uid),
                "--clear-groups",
                "/bin/sh",
                "-c",
                script,
            ])
            .spawn()
            .unwrap();
        let pid = i64::from(c.id());
        assert!(c.wait().unwrap().success(), "{script}");
        pid
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn root_sh(script: &str) -> i64 {
    common::run_ok("/bin/sh", &["-c", script])
}

fn app_dir(tag: &str) -> PathBuf {
    // Under /var/lib, not /tmp: a real application directory shape.
    let d = Path::new("/var/lib").join(format!("tripline-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Command::new("chmod")
        .args(["0777", d.to_str().unwrap()])
        .status()
        .unwrap();
    d
}

fn config(app: &Path, extra: &str) -> PathBuf {
    let f = app.with_extension("yml");
    std::fs::write(
        &f,
        format!("sensor:\n  app_dirs: [{}]\n{extra}", app.display()),
    )
    .unwrap();
    f
}

/// The event `name` from the shell `pid` or the command it ran (a shell may fork or exec it).
fn file_event(ex: &Exporter, name: &str, pid: i64) -> Value {
    ex.wait_events(name, WAIT, |e| {
        s(e, "event.name") == name
            && (i(e, "process.pid") == pid || i(e, "process.parent_pid") == pid)
    })
    .remove(0)
}

#[test]
fn file_events_as_root_and_as_an_unprivileged_user() {
    let app = app_dir("events");
    let cfg = config(&app, "");
    let ex = Exporter::start(&["events", "--config.file", cfg.to_str().unwrap()]);
    let a = app.display().to_string();

    let pid = root_sh(&format!("echo one > {a}/f1"));
    let e = file_event(&ex, "tripline.file.write", pid);
    assert_eq!(s(&e, "file.path"), format!("{a}/f1"));
    assert_eq!(i(&e, "process.user.id"), 0);
    assert!(i(&e, "tripline.file.result") >= 0);
    assert_eq!(e["tripline.file.path_resolved"], Value::Bool(true));
    assert!(s(&e, "process.executable.path").ends_with("sh"), "{e}");

    let pid = root_sh(&format!("mv {a}/f1 {a}/f2"));
    let e = file_event(&ex, "tripline.file.rename", pid);
    assert_eq!(
        (s(&e, "file.path"), s(&e, "tripline.file.new_path")),
        (format!("{a}/f1"), format!("{a}/f2"))
    );

    let pid = root_sh(&format!("chmod 640 {a}/f2"));
    assert_eq!(
        s(&file_event(&ex, "tripline.file.chmod", pid), "file.mode"),
        "0640"
    );

    let user = TestUser::create("e");
    let pid = root_sh(&format!("chown {} {a}/f2", user.uid));
    // A string, as the semantic conventions type it.
    assert_eq!(
        s(
            &file_event(&ex, "tripline.file.chown", pid),
            "file.owner.id"
        ),
        user.uid.to_string()
    );

    let pid = root_sh(&format!("ln -s {a}/f2 {a}/l1"));
    let e = file_event(&ex, "tripline.file.link", pid);
    assert_eq!(
        (s(&e, "file.path"), s(&e, "tripline.file.new_path")),
        (format!("{a}/f2"), format!("{a}/l1"))
    );

    let pid = root_sh(&format!("rm {a}/l1"));
    assert_eq!(
        s(&file_event(&ex, "tripline.file.unlink", pid), "file.path"),
        format!("{a}/l1")
    );

    // The unprivileged user: its uid, and a failure (EACCES on a root-owned 0640 file) with its errno.
    let pid = user.sh(&format!("echo two > {a}/u1"));
    let e = file_event(&ex, "tripline.file.write", pid);
    assert_eq!(i(&e, "process.user.id"), i64::from(user.uid));
    assert_eq!(i(&e, "process.real_user.id"), i64::from(user.uid));
    assert_eq!(s(&e, "file.path"), format!("{a}/u1"));
    Command::new("chown")
        .args(["root", &format!("{a}/f2")])
        .status()
        .unwrap();
    let mut c = Command::new("setpriv")
        .args([
            &format!("--reuid={}", user.uid),
            &format!("--regid={}", user.uid),
            "--clear-groups",
            "/bin/sh",
            "-c",
            &format!("echo x > {a}/f2"),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = i64::from(c.id());
    assert!(!c.wait().unwrap().success());
    let e = file_event(&ex, "tripline.file.write", pid);
    assert_eq!(i(&e, "tripline.file.result"), -13);
    assert_eq!(s(&e, "error.type"), "EACCES");

    // Relative paths are resolved against the process's working directory.
    let pid = root_sh(&format!("cd {a} && exec /usr/bin/python3 -c \"open('rel','w').write('x'); import time; time.sleep(0.5)\""));
    let e = file_event(&ex, "tripline.file.write", pid);
    assert_eq!(s(&e, "file.path"), format!("{a}/rel"));
    assert_eq!(e["tripline.file.path_resolved"], Value::Bool(true));

    // Outside the watched paths: no event, the filter counter moves.
    let before = ex.sample("tripline_file_events_filtered_total");
    let out = std::env::temp_dir().join(format!("tripline-unwatched-{}", std::process::id()));
    let pid = root_sh(&format!(
        "echo x > {} && rm {}",
        out.display(),
        out.display()
    ));
    std::thread::sleep(Duration::from_millis(800));
    assert!(ex
        .events_where(
            |e| (i(e, "process.pid") == pid || i(e, "process.parent_pid") == pid)
                && s(e, "event.name").starts_with("tripline.file.")
        )
        .is_empty());
    assert!(ex.sample("tripline_file_events_filtered_total") >= before + 2.0);
    let _ = std::fs::remove_dir_all(&app);
    let _ = std::fs::remove_file(&cfg);
}

#[test]
fn app_directory_rule_allows_the_deploy_user_only() {
    let app = app_dir("owner");
    let user = TestUser::create("o");
    let policy = app.with_extension("policy.yml");
    std::fs::write(
        &policy,
        format!(
            "name: app\nrules:\n  - id: app_dir_foreign_writer\n    description: only the deploy user writes the app directory\n    severity: high\n    tactic: persistence\n    techniques: [T1505.003]\n    match:\n      kind: [file_write, file_rename, file_unlink]\n      file_path: [\"{}/**\"]\n    except:\n      - user: [{}]\n",
            app.display(),
            user.name
        ),
    )
    .unwrap();
    let cfg = config(
        &app,
        &format!("detect:\n  policy_file: {}\n", policy.display()),
    );
    let out = app.with_extension("findings.jsonl");
    let ex = Exporter::start(&[
        "--config.file",
        cfg.to_str().unwrap(),
        "--events.output",
        out.to_str().unwrap(),
        "--baseline.mode",
        "learn",
    ]);
    let a = app.display().to_string();
    let allowed = user.sh(&format!("echo deploy > {a}/release"));
    let foreign = root_sh(&format!("echo evil > {a}/shell.php"));
    let deadline = std::time::Instant::now() + WAIT;
    let find = || -> Vec<Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let f = loop {
        if let Some(f) = find().into_iter().find(|f| i(f, "process.pid") == foreign) {
            break f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no finding for the foreign write"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(s(&f, "security_rule.name"), "app_dir_foreign_writer");
    assert_eq!(s(&f, "file.path"), format!("{a}/shell.php"));
    assert_eq!(i(&f, "process.user.id"), 0);
    assert!(
        find().iter().all(|f| i(f, "process.pid") != allowed),
        "the deploy user's write must be silent"
    );
    assert!(
        ex.sample("tripline_rule_matches_total{rule=\"app_dir_foreign_writer\",severity=\"high\"}")
            >= 1.0
    );
    let _ = std::fs::remove_dir_all(&app);
    for f in [cfg, policy, out] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn setuid_binary_exec_by_a_user_is_flagged() {
    let app = app_dir("setid");
    let user = TestUser::create("s");
    let bin = app.join("idcopy");
    std::fs::copy("/usr/bin/id", &bin).unwrap();
    Command::new("chmod")
        .args(["4755", bin.to_str().unwrap()])
        .status()
        .unwrap();
    // `tripline events` prints findings with the events.
    let ex = Exporter::start(&["events"]);
    let pid = user.sh(&format!("{} > /dev/null", bin.display()));
    let e = ex.wait_events("setuid exec", WAIT, |e| {
        s(e, "event.name") == "tripline.process.exec"
            && (i(e, "process.pid") == pid || i(e, "process.parent_pid") == pid)
            && s(e, "process.executable.path") == bin.display().to_string()
    });
    assert_eq!(i(&e[0], "process.user.id"), 0, "effective uid after exec");
    assert_eq!(i(&e[0], "process.real_user.id"), i64::from(user.uid));
    assert_eq!(e[0]["tripline.exec.setid"], Value::Bool(true));
    let f = ex.wait_events("root_gained_by_unusual_setuid_binary finding", WAIT, |f| {
        s(f, "security_rule.name") == "root_gained_by_unusual_setuid_binary"
            && s(f, "process.executable.path") == bin.display().to_string()
    });
    assert_eq!(s(&f[0], "severity_text"), "ERROR");
    let _ = std::fs::remove_dir_all(&app);
}
