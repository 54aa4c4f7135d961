//! Detection on the real kernel: auto mode learning then monitoring, a fake server spawning a shell,
//! and the CI-training flow (learn, save, monitor a fresh exporter with the file).
//!
//! Helper processes are copies of this test binary under new names (so they are executables the
//! baseline has never seen), re-run with `--exact helper_*` and an environment variable.
mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{part_texts, s, test_dir, Exporter};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Helper: connect to `$TRIPLINE_HELPER_CONNECT` and exit.
#[test]
fn helper_connect() {
    if let Ok(addr) = std::env::var("TRIPLINE_HELPER_CONNECT") {
        let _c = TcpStream::connect(addr).expect("helper connect");
    }
}

/// Helper: run `/bin/sh -c true` as a child (a "server" spawning a shell).
#[test]
fn helper_spawn_shell() {
    if std::env::var_os("TRIPLINE_HELPER_SHELL").is_some() {
        Command::new("/bin/sh")
            .args(["-c", "true"])
            .status()
            .expect("spawn sh");
    }
}

/// A copy of this test binary named `name` in a fresh directory under target/tmp.
fn helper_binary(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(std::env::current_exe().unwrap(), &path).unwrap();
    path
}

fn run_helper(bin: &Path, test: &str, env: (&str, &str)) -> i64 {
    let mut child = Command::new(bin)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = i64::from(child.id());
    assert!(child.wait().unwrap().success());
    pid
}

fn findings(path: &Path) -> Vec<Value> {
    common::read_jsonl(path)
}

fn wait_monitoring(ex: &Exporter) {
    let deadline = Instant::now() + WAIT;
    while ex.sample("tripline_baseline_learning{model=\"network_process\"}") != 0.0 {
        assert!(Instant::now() < deadline, "baseline still learning");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn auto_mode_flags_new_network_process_and_server_shell() {
    let dir = test_dir("auto");
    let out = dir.join("findings.jsonl");
    let ex = Exporter::start(&[
        "--events.output",
        out.to_str().unwrap(),
        "--baseline.mode",
        "auto",
        "--baseline.learn-for",
        "4s",
    ]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || while listener.accept().is_ok() {});

    // Learning: a known agent connects.
    let known = helper_binary(&dir, "known-agent");
    run_helper(&known, "helper_connect", ("TRIPLINE_HELPER_CONNECT", &addr));
    wait_monitoring(&ex);
    let base = ex.sample("tripline_anomalies_total{model=\"network_process\",severity=\"medium\"}");

    // Monitoring: the known agent is silent; a never-seen one is an anomaly.
    let known_pid = run_helper(&known, "helper_connect", ("TRIPLINE_HELPER_CONNECT", &addr));
    let newbie = helper_binary(&dir, "brand-new-agent");
    let new_pid = run_helper(
        &newbie,
        "helper_connect",
        ("TRIPLINE_HELPER_CONNECT", &addr),
    );
    // The new agent's anomaly is a part of a finding: its own (its exec, connect and ports are parts
    // of it; a rule may lead, e.g. exec_from_temp for a checkout under /tmp) or its parent's, when the
    // test had news of its own just before (another test listening on a new port): found by pid.
    let network_parts = |lines: Vec<Value>, pid: i64| -> Vec<(Value, String)> {
        lines
            .into_iter()
            .flat_map(|f| {
                common::parts_of(&f, pid)
                    .into_iter()
                    .filter(|p| p.starts_with("new network_process "))
                    .map(move |p| (f.clone(), p))
            })
            .collect()
    };
    let (f, part) = common::wait_jsonl_for(&out, "network_process anomaly", |lines| {
        network_parts(lines, new_pid).into_iter().next()
    });
    assert!(
        part.starts_with(&format!(
            "new network_process behaviour: {} (",
            newbie.display()
        )),
        "the key is the new executable: {part}"
    );
    let port = addr.rsplit(':').next().unwrap();
    assert!(
        part.contains(&format!("connected to 127.0.0.1:{port}")),
        "the part names the peer: {part}"
    );
    assert!(
        ["medium", "high", "critical"].contains(&s(&f, "tripline.finding.severity").as_str()),
        "a medium anomaly or stronger: {f:#}"
    );
    let after =
        ex.sample("tripline_anomalies_total{model=\"network_process\",severity=\"medium\"}");
    assert!(
        after > base,
        "anomaly counter did not rise ({base} -> {after})"
    );
    let known = network_parts(findings(&out), known_pid);
    assert!(
        known.is_empty(),
        "the learned agent must not be an anomaly: {known:#?}"
    );

    // A fake web server spawns a shell.
    let nginx = helper_binary(&dir, "nginx");
    let server_pid = run_helper(&nginx, "helper_spawn_shell", ("TRIPLINE_HELPER_SHELL", "1"));
    // The rule leads the finding of the server's process tree, or is one of its parts when another
    // high rule led (exec_from_temp for a checkout under /tmp) or the test's own finding told it: the
    // part names the server as the parent and the canonical shell.
    let shell = std::fs::canonicalize("/bin/sh")
        .unwrap()
        .display()
        .to_string();
    let (f, _) = common::wait_jsonl_for(&out, "shell_spawned_by_server", |lines| {
        lines.into_iter().find_map(|f| {
            let part = part_texts(&f).into_iter().find(|p| {
                p.starts_with("shell_spawned_by_server:")
                    && common::part_by_child_of(p, server_pid)
                    && p.ends_with(&format!("executed {shell}"))
            })?;
            Some((f, part))
        })
    });
    assert_eq!(s(&f, "event.name"), "tripline.rule.match");
    assert_eq!(s(&f, "tripline.event.kind"), "exec");
    if s(&f, "security_rule.name") == "shell_spawned_by_server" {
        assert_eq!(
            s(&f, "process.executable.path"),
            shell,
            "the canonical executable; the spelled one is tripline.exec.filename: {f}"
        );
        assert_eq!(s(&f, "tripline.exec.filename"), "/bin/sh");
        assert_eq!(
            s(&f, "tripline.process.parent.executable.path"),
            nginx.display().to_string()
        );
    }
    assert_eq!(s(&f, "severity_text"), "ERROR");
    assert!(
        ex.sample(
            "tripline_rule_matches_total{rule=\"shell_spawned_by_server\",severity=\"high\"}"
        ) >= 1.0
    );
    assert!(ex.sample("tripline_threat_level") > 0.0);

    // The API serves the same findings.
    let (code, body) = common::http_get(ex.port, "/api/v1/findings?since=0").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("shell_spawned_by_server"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ci_training_then_monitor_replays_silently_and_flags_one_new_behaviour() {
    let dir = test_dir("train");
    let model = dir.join("baseline.yml");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || while listener.accept().is_ok() {});
    let agent = helper_binary(&dir, "trained-agent");

    // 1. Learn in CI and save (SIGTERM persists).
    let ex = Exporter::start(&[
        "--baseline.mode",
        "learn",
        "--baseline.file",
        model.to_str().unwrap(),
    ]);
    let pid = run_helper(&agent, "helper_connect", ("TRIPLINE_HELPER_CONNECT", &addr));
    ex.wait_events_metric("network_process learned", || {
        let (_, body) = common::http_get(ex.port, "/api/v1/baseline").unwrap();
        body.contains("trained-agent")
    });
    assert_eq!(ex.stop(), 0);
    let text = std::fs::read_to_string(&model).unwrap();
    assert!(
        text.contains("schema: tripline.baseline/v1") && text.contains("trained-agent"),
        "{text}"
    );
    let _ = pid;

    // 2. A fresh exporter monitors with the file from its first second.
    let out = dir.join("findings.jsonl");
    let ex = Exporter::start(&[
        "--baseline.mode",
        "monitor",
        "--baseline.file",
        model.to_str().unwrap(),
        "--events.output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        ex.sample("tripline_baseline_learning{model=\"network_process\"}"),
        0.0
    );
    let replay_pid = run_helper(&agent, "helper_connect", ("TRIPLINE_HELPER_CONNECT", &addr));

    // One new behaviour: the same agent connects to a non-ephemeral port it never used.
    let fixed = (20_000..30_000)
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
        .expect("a free port");
    let fixed_addr = fixed.local_addr().unwrap().to_string();
    std::thread::spawn(move || while fixed.accept().is_ok() {});
    let new_pid = run_helper(
        &agent,
        "helper_connect",
        ("TRIPLINE_HELPER_CONNECT", &fixed_addr),
    );
    // The new key may be told inside the finding of the process that started the agent (its parent,
    // the test, listened on a new port just before): every part, by pid.
    let new_parts = |lines: &[Value], pid: i64| -> Vec<String> {
        lines
            .iter()
            .flat_map(|f| common::parts_of(f, pid))
            .filter(|p| p.starts_with("new "))
            .collect()
    };
    common::wait_jsonl_for(&out, "the new port", |lines| {
        Some(()).filter(|_| !new_parts(&lines, new_pid).is_empty())
    });
    std::thread::sleep(Duration::from_millis(500));
    // Rules still apply (e.g. when the checkout lives under /tmp); the baseline must be silent.
    let replay = new_parts(&findings(&out), replay_pid);
    assert!(
        replay.is_empty(),
        "the trained workload must raise no anomaly: {replay:#?}"
    );
    let new = new_parts(&findings(&out), new_pid);
    assert_eq!(
        new.len(),
        1,
        "exactly one new key for one new behaviour: {new:#?}"
    );
    assert!(new[0].starts_with("new outbound_port "), "{new:?}");
    assert_eq!(ex.stop(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_baseline_file_fails_start_with_a_clear_error_and_is_kept() {
    let dir = test_dir("corrupt");
    let model = dir.join("baseline.yml");
    std::fs::write(&model, "this: [is not a baseline\n").unwrap();
    let out = Command::new(common::BIN)
        .args([
            "--baseline.file",
            model.to_str().unwrap(),
            "--web.listen-address",
            "",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a valid tripline baseline") && err.contains("moved aside"),
        "{err}"
    );
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        kept.iter().any(|n| n.starts_with("baseline.yml.corrupt-")),
        "{kept:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn baseline_cli_diff_gates_and_policy_check_reports_locations() {
    let dir = test_dir("cli");
    let old = dir.join("old.yml");
    let new = dir.join("new.yml");
    std::fs::write(
        &old,
        "schema: tripline.baseline/v1\nmodels:\n  network_process:\n    learned: [/usr/bin/curl]\n",
    )
    .unwrap();
    std::fs::write(&new, "schema: tripline.baseline/v1\nmodels:\n  network_process:\n    learned: [/usr/bin/curl, /tmp/x]\n").unwrap();
    let d = Command::new(common::BIN)
        .args(["baseline", "diff"])
        .arg(&old)
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(d.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&d.stdout).contains("+ network_process: /tmp/x"));
    let same = Command::new(common::BIN)
        .args(["baseline", "diff"])
        .arg(&new)
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0));
    let merged = dir.join("merged.yml");
    let m = Command::new(common::BIN)
        .args(["baseline", "merge"])
        .arg(&old)
        .arg(&new)
        .arg("-o")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(std::fs::read_to_string(&merged).unwrap().contains("/tmp/x"));

    let policy = dir.join("p.yml");
    std::fs::write(
        &policy,
        "rules:\n  - id: r\n    description: d\n    severity: hgh\n    tactic: x\n    match: {}\n",
    )
    .unwrap();
    let c = Command::new(common::BIN)
        .args(["policy", "check"])
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(3), "invalid policy: exit 3");
    let err = String::from_utf8_lossy(&c.stderr);
    assert!(
        err.contains("p.yml:4:15") && err.contains("expected one of `info`"),
        "{err}"
    );
    let ok = Command::new(common::BIN)
        .args(["policy", "check", "/dev/stdin"])
        .stdin(std::fs::File::open(&policy).unwrap())
        .output()
        .unwrap();
    assert!(!ok.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
