//! Persistence locations and account changes on the real kernel: writes to per-user start-up and
//! history files of a home that exists when tripline starts (watched through its own kernel prefixes,
//! not all of /home), system-wide persistence files, and useradd/usermod/userdel diffed into typed
//! account findings with the account name in the record.
mod common;

use std::process::Command;
use std::time::Duration;

use common::{i, s, Exporter};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn sh(script: &str) -> i64 {
    common::run_ok("/bin/sh", &["-c", script])
}

/// Whether finding `e` is `rule` or has it as one of its parts (a finding groups one process's matches).
fn has_rule(e: &Value, rule: &str) -> bool {
    s(e, "security_rule.name") == rule
        || e["tripline.finding.rules"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r.as_str() == Some(rule)))
}

/// The finding of `rule` about `pid` (the shell) or its child.
fn finding(ex: &Exporter, rule: &str, pid: i64) -> Value {
    ex.wait_events(rule, WAIT, |e| {
        has_rule(e, rule) && (i(e, "process.pid") == pid || i(e, "process.parent_pid") == pid)
    })
    .remove(0)
}

/// An account finding of `rule` naming `user`.
fn account_finding(ex: &Exporter, rule: &str, user: &str) -> Value {
    ex.wait_events(&format!("{rule} for {user}"), WAIT, |e| {
        has_rule(e, rule) && s(e, "user.name") == user
    })
    .remove(0)
}

struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("/bin/sh").args(["-c", c]).status();
        }
    }
}

#[test]
fn per_user_and_system_persistence_files() {
    let tag = std::process::id() % 100_000;
    let user = format!("trp{tag}");
    let home = format!("/home/{user}");
    let _ = Command::new("userdel").args(["-r", &user]).status();
    assert!(Command::new("useradd")
        .args(["-m", "-d", &home, "-s", "/bin/sh", &user])
        .status()
        .unwrap()
        .success());
    let profile_d = format!("/etc/profile.d/tripline-test-{tag}.sh");
    let pam = format!("/etc/pam.d/tripline-test-{tag}");
    let preload_existed = std::path::Path::new("/etc/ld.so.preload").exists();
    let mut cleanup = vec![
        format!("userdel -r {user} 2>/dev/null"),
        format!("rm -f {profile_d} {pam} /etc/udev/rules.d/99-tripline-test-{tag}.conf /etc/modules-load.d/99-tripline-test-{tag}.conf"),
    ];
    if !preload_existed {
        cleanup.push("rm -f /etc/ld.so.preload".into());
    }
    let _c = Cleanup(cleanup);
    // The home exists before start: its per-user files get kernel prefixes of their own.
    let ex = Exporter::start(&["events"]);

    let pid = sh(&format!("echo '# test' >> {home}/.bashrc"));
    let f = finding(&ex, "shell_startup_file_changed", pid);
    assert_eq!(s(&f, "file.path"), format!("{home}/.bashrc"));
    assert_eq!(
        s(&f, "security_rule.reference"),
        "https://attack.mitre.org/techniques/T1546/004/"
    );

    let pid = sh(&format!(
        // Relative spelling; the shell stays a moment so its cwd can be read (until paths are
        // resolved in the kernel).
        "cd {home} && echo 'export X=1' > .bash_profile; sleep 0.5"
    ));
    let f = finding(&ex, "shell_startup_file_changed", pid);
    assert_eq!(
        s(&f, "file.path"),
        format!("{home}/.bash_profile"),
        "relative spelling"
    );

    // History emptied, then replaced by a link to /dev/null (ln, a child of the shell), then removed.
    let hist = format!("{home}/.bash_history");
    let pid = sh(&format!("echo ls > {hist}; ln -sf /dev/null {hist}"));
    // One finding for the shell and its ln child: both rules among its parts.
    let f = finding(&ex, "shell_history_truncated", pid);
    assert!(has_rule(&f, "shell_history_removed_or_linked"), "{f}");
    let pid = common::run_ok("/usr/bin/rm", &["-f", &hist]);
    let f = finding(&ex, "shell_history_removed_or_linked", pid);
    assert_eq!(s(&f, "event.name"), "tripline.rule.match");

    let pid = sh(&format!("echo '# test' > {profile_d}"));
    assert_eq!(
        s(
            &finding(&ex, "shell_startup_file_changed", pid),
            "file.path"
        ),
        profile_d
    );
    let pid = sh(&format!("echo '# test' > {pam}"));
    assert_eq!(
        s(
            &finding(&ex, "pam_configuration_or_module_changed", pid),
            "severity_text"
        ),
        "ERROR"
    );
    for (dir, rule) in [
        ("/etc/udev/rules.d", "udev_rule_changed"),
        ("/etc/modules-load.d", "kernel_module_load_config_changed"),
    ] {
        // Only where the facility is installed (a comment line changes nothing).
        if std::path::Path::new(dir).is_dir() {
            let f = format!("{dir}/99-tripline-test-{tag}.conf");
            let pid = sh(&format!("echo '# test' > {f}; rm -f {f}"));
            let found = finding(&ex, rule, pid);
            // The file is the finding's own, or (correlated with other news of the same processes)
            // one of its parts'.
            let parts = found["tripline.finding.parts"].as_array().cloned();
            assert!(
                s(&found, "file.path") == f
                    || parts.is_some_and(|p| p.iter().any(|x| {
                        x.as_str()
                            .is_some_and(|x| x.contains(&f) && x.contains(rule))
                    })),
                "{found}"
            );
        }
    }
    if !preload_existed {
        // An empty preload file preloads nothing; it exists for a moment.
        let pid = sh(": > /etc/ld.so.preload; rm -f /etc/ld.so.preload");
        let f = finding(&ex, "loader_preload_file_changed", pid);
        assert_eq!(s(&f, "severity_text"), "FATAL");
    }

    // Not a watched per-user file: filtered in the kernel, no event.
    let before = ex.sample("tripline_file_events_filtered_total");
    let pid = sh(&format!(
        "echo x > {home}/notes.txt; mkdir -p {home}/.cache; echo x > {home}/.cache/y"
    ));
    std::thread::sleep(Duration::from_millis(800));
    assert!(ex
        .events_where(
            |e| (i(e, "process.pid") == pid || i(e, "process.parent_pid") == pid)
                && s(e, "event.name").starts_with("tripline.file.")
        )
        .is_empty());
    assert!(ex.sample("tripline_file_events_filtered_total") >= before + 2.0);
    assert_eq!(ex.stop(), 0);
}

#[test]
fn account_changes_are_typed_findings_with_the_account_name() {
    let tag = std::process::id() % 100_000;
    let (svc, root2) = (format!("tra{tag}"), format!("trz{tag}"));
    for u in [&svc, &root2] {
        let _ = Command::new("userdel").arg(u).status();
    }
    let _c = Cleanup(vec![
        format!("userdel {svc} 2>/dev/null"),
        format!("userdel -f {root2} 2>/dev/null"),
    ]);
    let ex = Exporter::start(&["events"]);

    assert!(Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "-s",
            "/usr/sbin/nologin",
            &svc
        ])
        .status()
        .unwrap()
        .success());
    let f = account_finding(&ex, "account_created", &svc);
    assert_eq!(s(&f, "tripline.account.change"), "account_added");
    assert!(s(&f, "process.executable.path").ends_with("useradd"), "{f}");
    assert!(s(&f, "file.path").starts_with("/etc/"), "{f}");

    assert!(Command::new("usermod")
        .args(["-s", "/bin/bash", &svc])
        .status()
        .unwrap()
        .success());
    let f = account_finding(&ex, "account_shell_or_home_changed", &svc);
    assert_eq!(
        (
            s(&f, "tripline.account.old_value"),
            s(&f, "tripline.account.new_value")
        ),
        ("/usr/sbin/nologin".into(), "/bin/bash".into())
    );

    assert!(Command::new("usermod")
        .args(["-aG", "sudo", &svc])
        .status()
        .unwrap()
        .success());
    let f = account_finding(&ex, "account_added_to_privileged_group", &svc);
    assert_eq!(s(&f, "group.name"), "sudo");
    assert_eq!(s(&f, "severity_text"), "ERROR");

    // A second uid-0 account (locked, no shell, removed at once).
    assert!(Command::new("useradd")
        .args([
            "-o",
            "-u",
            "0",
            "-g",
            "0",
            "--no-create-home",
            "-s",
            "/usr/sbin/nologin",
            &root2
        ])
        .status()
        .unwrap()
        .success());
    let f = account_finding(&ex, "second_root_account", &root2);
    assert_eq!(s(&f, "severity_text"), "FATAL");
    assert!(Command::new("userdel")
        .args(["-f", &root2])
        .status()
        .unwrap()
        .success());
    let _ = account_finding(&ex, "account_deleted", &root2);

    // An in-place append (no rename): found on the next re-check.
    let pid = sh(&format!(
        "echo '{svc}x:x:64999:64999::/nonexistent:/usr/sbin/nologin' >> /etc/passwd; sleep 0.1; sed -i '/^{svc}x:/d' /etc/passwd"
    ));
    let f = account_finding(&ex, "account_created", &format!("{svc}x"));
    assert!(
        i(&f, "process.pid") == pid || i(&f, "process.parent_pid") == pid,
        "attributed to the writer: {f}"
    );
    // The account name never becomes a metric label.
    assert!(!ex.metrics().contains(&svc));
    assert_eq!(ex.stop(), 0);
}

/// Clearing a security log: truncate(2) and rm of a file under /var/log/audit (one this test makes, so
/// no real log is touched) each raise `system_log_cleared`.
#[test]
fn security_log_cleared() {
    let ex = Exporter::start(&["events"]);
    let dir = std::path::Path::new("/var/log/audit");
    let made_dir = !dir.exists();
    std::fs::create_dir_all(dir).unwrap();
    let f = dir.join(format!("tripline-test-{}.log", std::process::id()));
    let f = f.display().to_string();
    // Written by a child, not by this test's process: news of the test process itself would open a
    // finding that every child it starts inside the correlation window joins (those of the tests
    // running beside this one too), so their findings would be led by the test, not by their shell.
    sh(&format!("echo x > {f}"));
    let cut = common::run_ok("/usr/bin/truncate", &["-s", "0", &f]);
    let rm = common::run_ok("/bin/rm", &[&f]);
    // Each child's own finding, or a part of one (correlated with news of the processes around it).
    for (what, pid) in [("truncated", cut), ("deleted", rm)] {
        ex.wait_events(what, WAIT, |e| {
            has_rule(e, "system_log_cleared")
                && common::part_texts(e).iter().any(|t| {
                    t.starts_with("system_log_cleared:")
                        && common::part_by(t, pid)
                        && t.contains(what)
                })
        });
    }
    if made_dir {
        let _ = std::fs::remove_dir(dir);
    }
}
