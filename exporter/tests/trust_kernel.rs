//! Findings people can trust, on the real kernel: stable keys across restarts and path spellings, one
//! finding per novelty, no alarm from tripline's own life cycle, lineage kept for orphans, and exceptions
//! that names cannot fool.
mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{app_dir_config, i, part_texts, read_jsonl, s, test_dir, wait_jsonl, Exporter};
use serde_json::Value;

/// Helper: connect to `$TRIPLINE_HELPER_CONNECT`, run /bin/true as a child, write `$TRIPLINE_HELPER_WRITE`.
#[test]
fn helper_novel() {
    if let Ok(addr) = std::env::var("TRIPLINE_HELPER_CONNECT") {
        let _c = TcpStream::connect(addr).expect("helper connect");
        Command::new("/bin/true").status().expect("child");
        if let Ok(path) = std::env::var("TRIPLINE_HELPER_WRITE") {
            std::fs::write(path, "x").expect("write");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn sh(script: &str) -> u32 {
    let mut c = Command::new("/bin/sh")
        .args(["-c", script])
        .spawn()
        .unwrap();
    let pid = c.id();
    assert!(c.wait().unwrap().success(), "{script}");
    pid
}

fn anomalies(out: &Path) -> Vec<Value> {
    read_jsonl(out)
        .into_iter()
        .filter(|f| f.get("tripline.finding.id").is_some())
        .collect()
}

/// Learn a workload that starts children through /bin/..., /usr/bin/... and a symlinked directory, with a
/// long-lived loop that tripline finds in /proc after a restart; then monitor with the saved file: silent.
#[test]
fn restart_and_path_spellings_keep_the_learned_keys() {
    let dir = test_dir("restart");
    let real = dir.join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::copy("/bin/true", real.join("tool")).unwrap();
    std::os::unix::fs::symlink(&real, dir.join("alias")).unwrap();
    let tag = format!("tripline-restart-{}", std::process::id());
    let model = dir.join("baseline.yml");
    let workload = format!(
        "/bin/true; /usr/bin/true; {a}/tool; {r}/tool; cd {d} && ./alias/tool",
        a = dir.join("alias").display(),
        r = real.display(),
        d = dir.display()
    );
    let ex = Exporter::start(&[
        "--baseline.mode",
        "learn",
        "--baseline.file",
        model.to_str().unwrap(),
    ]);
    // A loop executed (as /bin/sh) while learning and still running at the restart: the second tripline
    // finds it in /proc, where its executable is the canonical one.
    let mut looper = Command::new("/bin/sh")
        .args([
            "-c",
            &format!("while :; do {workload}; sleep 0.3; done # {tag}"),
        ])
        .spawn()
        .unwrap();
    for _ in 0..3 {
        sh(&workload);
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ex.stop(), 0);

    let out = dir.join("findings.jsonl");
    let ex = Exporter::start(&[
        "--baseline.mode",
        "monitor",
        "--baseline.file",
        model.to_str().unwrap(),
        "--events.output",
        out.to_str().unwrap(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        sh(&workload);
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(4)); // past the correlation window
    let _ = looper.kill();
    let _ = looper.wait();
    // New keys (parts starting "new ") of the workload: in a finding the loop or its child leads, naming
    // the loop as actor or parent (its parts join the test process's finding when the test has news of
    // its own), or naming the workload's directory. Rules may still match (a checkout under /tmp); keys
    // must not.
    let looper_pid = i64::from(looper.id());
    let d = dir.display().to_string();
    let d = d.as_str();
    let ours: Vec<String> = anomalies(&out)
        .iter()
        .flat_map(|f| {
            let led = i(f, "process.pid") == looper_pid || i(f, "process.parent_pid") == looper_pid;
            part_texts(f).into_iter().filter(move |p| {
                p.starts_with("new ")
                    && (led
                        || common::part_by(p, looper_pid)
                        || common::part_by_child_of(p, looper_pid)
                        || p.contains(d))
            })
        })
        .collect();
    assert!(
        ours.is_empty(),
        "a restart re-raised learned behaviour: {ours:#?}"
    );
    assert_eq!(ex.stop(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A never-seen executable connects out, starts a child and writes a file: exactly one finding with every
/// new key, while the counters count each key.
#[test]
fn one_novel_program_is_one_finding() {
    let dir = test_dir("novel");
    let (app, config) = app_dir_config(&dir);
    let out = dir.join("findings.jsonl");
    let ex = Exporter::start(&[
        "--config.file",
        config.to_str().unwrap(),
        "--baseline.mode",
        "monitor",
        "--events.output",
        out.to_str().unwrap(),
    ]);
    // It connects to the exporter's own (ephemeral) port: a listener here would make the test process
    // a server with a new port to every exporter of this binary, news its next children would join.
    let addr = format!("127.0.0.1:{}", ex.port);
    let novel = dir.join(format!("novel-agent-{}", std::process::id()));
    std::fs::copy(std::env::current_exe().unwrap(), &novel).unwrap();
    let before =
        ex.sample("tripline_anomalies_total{model=\"network_process\",severity=\"medium\"}");
    let mut c = Command::new(&novel)
        .args(["--exact", "helper_novel", "--test-threads=1"])
        .env("TRIPLINE_HELPER_CONNECT", &addr)
        .env("TRIPLINE_HELPER_WRITE", app.join("state"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = i64::from(c.id());
    assert!(c.wait().unwrap().success());
    // Its parts may lead their own finding or be told in the finding of the process that started it
    // (the test harness, when that has news of its own): look at every part, by pid.
    let holding = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|f| {
                f.get("tripline.finding.id").is_some()
                    && part_texts(f).iter().any(|p| common::part_by(p, pid))
            })
            .cloned()
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while holding(&read_jsonl(&out)).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no finding for the novel program"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5)); // nothing more may follow
    let mine = holding(&read_jsonl(&out));
    assert_eq!(mine.len(), 1, "one finding for one novelty: {mine:#?}");
    let parts = common::parts_of(&mine[0], pid);
    for model in [
        "process_lineage",
        "network_process",
        "outbound_port",
        "file_writer",
    ] {
        assert!(
            parts
                .iter()
                .any(|p| p.starts_with(&format!("new {model} "))),
            "{model} missing from {parts:?}"
        );
    }
    assert!(i(&mine[0], "tripline.finding.part_count") >= 4);
    let after =
        ex.sample("tripline_anomalies_total{model=\"network_process\",severity=\"medium\"}");
    assert!(after > before, "each key still counted");
    assert_eq!(ex.stop(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A clean stop by the process that started tripline is its life cycle: no finding of severity >= low.
#[test]
fn clean_sigterm_raises_no_finding() {
    let dir = test_dir("sigterm");
    let out = dir.join("findings.jsonl");
    let ex = Exporter::start(&["--events.output", out.to_str().unwrap()]);
    let started = Instant::now();
    assert_eq!(ex.stop(), 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    let signalled: Vec<Value> = read_jsonl(&out)
        .into_iter()
        .filter(|f| s(f, "security_rule.name") == "tripline_signalled")
        .collect();
    assert!(signalled.is_empty(), "{signalled:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cmd &` from a shell that exits first: the orphan keeps its real parent and lineage.
#[test]
fn orphans_name_their_real_parent() {
    let dir = test_dir("orphan");
    let out = dir.join("events.jsonl");
    let ex = Exporter::start(&[
        "--events.output",
        out.to_str().unwrap(),
        "--events.level",
        "exec",
    ]);
    let marker = format!("0.{}", 200 + std::process::id() % 700);
    let shell = sh(&format!("(sleep 0.3; exec /bin/sleep {marker}) & exit 0"));
    let ev = wait_jsonl(&out, "the orphan's exec", |e| {
        s(e, "event.name") == "tripline.process.exec"
            && e["process.command_args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(marker.as_str())))
    });
    assert_eq!(i(&ev, "process.parent_pid"), i64::from(shell), "{ev:#}");
    assert_ne!(
        i(&ev, "tripline.process.current_parent_pid"),
        i64::from(shell)
    );
    assert!(
        !s(&ev, "tripline.process.parent.executable.path").is_empty(),
        "{ev:#}"
    );
    assert_eq!(ex.stop(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rule whose exception names a verified program: a renamed copy, a prctl'd comm and a fake package
/// manager parent do not escape it; the real program does.
#[test]
fn names_do_not_escape_exceptions() {
    let dir = test_dir("names");
    let (app, config) = app_dir_config(&dir);
    let touch = std::fs::canonicalize("/usr/bin/touch").unwrap();
    let policy = dir.join("policy.yml");
    std::fs::write(
        &policy,
        format!(
            "rules:\n  - id: app_writer\n    description: only touch writes the app dir\n    severity: high\n    tactic: persistence\n    match:\n      kind: [file_write]\n      file_path: [\"{app}/**\"]\n    except:\n      - exe_path: [\"{touch}\"]\n      - ancestor_path: [\"/usr/bin/dpkg\"]\n",
            app = app.display(),
            touch = touch.display()
        ),
    )
    .unwrap();
    let out = dir.join("findings.jsonl");
    let ex = Exporter::start(&[
        "--config.file",
        config.to_str().unwrap(),
        "--policy.file",
        policy.to_str().unwrap(),
        "--events.output",
        out.to_str().unwrap(),
    ]);
    let fired = |target: &Path| {
        let t = target.display().to_string();
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if read_jsonl(&out)
                .iter()
                .any(|f| s(f, "security_rule.name") == "app_writer" && s(f, "file.path") == t)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    };
    // A copy of touch under its own name, elsewhere.
    let copy = dir.join("touch");
    std::fs::copy(&touch, &copy).unwrap();
    let a = app.join("renamed");
    assert!(Command::new(&copy).arg(&a).status().unwrap().success());
    // A shell that calls itself "touch" (prctl PR_SET_NAME through the comm file).
    let b = app.join("comm");
    sh(&format!(
        "printf touch > /proc/self/comm; : > {}",
        b.display()
    ));
    // A parent named like the package manager.
    let dpkg = dir.join("dpkg");
    std::fs::copy("/bin/sh", &dpkg).unwrap();
    let c = app.join("fakeparent");
    assert!(Command::new(&dpkg)
        .args(["-c", &format!("{} {}", copy.display(), c.display())])
        .status()
        .unwrap()
        .success());
    // The real one.
    let d = app.join("real");
    assert!(Command::new(&touch).arg(&d).status().unwrap().success());
    assert!(fired(&a), "renamed copy escaped");
    assert!(fired(&b), "prctl comm escaped");
    assert!(fired(&c), "fake package-manager parent escaped");
    assert!(!fired(&d), "the real program is excepted");
    assert_eq!(ex.stop(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every spelling of "run it from /tmp" matches the rule, with the canonical path in the record.
#[test]
fn temp_execution_matches_every_spelling() {
    let tmp = PathBuf::from(format!("/tmp/tripline-spell-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let dir = test_dir("spell");
    let out = dir.join("findings.jsonl");
    let ex = Exporter::start(&["--events.output", out.to_str().unwrap()]);
    let copy = |n: &str| {
        let p = tmp.join(n);
        std::fs::copy("/bin/sleep", &p).unwrap();
        std::fs::canonicalize(&p).unwrap().display().to_string()
    };
    let t = tmp.display().to_string();
    let rel = t.trim_start_matches('/');
    let mut cases: Vec<(String, String)> = Vec::new(); // (command, expected canonical path)
    let x1 = copy("x1");
    cases.push((format!("//{rel}/x1 0.4"), x1));
    let x2 = copy("x2");
    cases.push((format!("/usr/../{rel}/x2 0.4"), x2));
    let x3 = copy("x3");
    std::os::unix::fs::symlink(tmp.join("x3"), dir.join("link3")).unwrap();
    cases.push((format!("{}/link3 0.4", dir.display()), x3));
    let x4 = copy("x4");
    cases.push((format!("cd {t} && ./x4 0.4"), x4));
    let script = tmp.join("x5.sh");
    std::fs::write(&script, "sleep 0.4\n").unwrap();
    cases.push((format!("bash {t}/x5.sh"), script.display().to_string()));
    // Gone before tripline reads procfs: the exec probe's kernel-resolved executable and working
    // directory identify them (a relative binary that exits at once, a relative `#!` script).
    let x6 = tmp.join("x6");
    std::fs::copy("/bin/true", &x6).unwrap();
    cases.push((format!("cd {t} && ./x6"), x6.display().to_string()));
    let x7 = tmp.join("x7.sh");
    std::fs::write(&x7, "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(&x7, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    cases.push((format!("cd {t} && ./x7.sh"), x7.display().to_string()));
    for (cmd, _) in &cases {
        sh(cmd);
    }
    for (cmd, want) in &cases {
        // The rule's part names the canonical path, whether it leads the finding or joins the one
        // of the shell that ran it.
        let f = wait_jsonl(&out, cmd, |f| {
            part_texts(f).iter().any(|p| {
                p.starts_with("exec_from_temp_or_memory:")
                    && (p.ends_with(&format!("executed {want}"))
                        || p.ends_with(&format!("running {want}")))
            })
        });
        assert!(f.get("tripline.finding.id").is_some(), "{cmd}");
    }
    assert_eq!(ex.stop(), 0);
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&dir);
}
