//! Helpers for tests that run the real `tripline` binary against the real kernel (as root).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_tripline");

/// Fails loudly when the kernel tests cannot run: they are part of CI, which runs as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc_geteuid() };
    assert_eq!(
        euid, 0,
        "kernel tests load eBPF programs and must run as root (CI does)"
    );
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A free loopback port (bound and released; the small race is acceptable in tests). Bound, never
/// listened on: a listen makes the test process a network-facing server to every running exporter, so
/// each shell it starts afterwards matches `shell_spawned_by_server` (and leads its children's finding).
pub fn free_port() -> u16 {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.local_addr().unwrap().as_socket().unwrap().port()
}

/// A running exporter whose stdout JSON lines are collected.
pub struct Exporter {
    pub child: Child,
    pub port: u16,
    pub events: Arc<Mutex<Vec<Value>>>,
    pub stderr: Arc<Mutex<String>>,
}

impl Exporter {
    /// Starts `tripline <args> --web.listen-address 127.0.0.1:<port>` and waits for /readyz.
    pub fn start(args: &[&str]) -> Exporter {
        require_root();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        // Each exporter gets its own state directory (clean-shutdown marker), so parallel tests and
        // SIGKILLed ones never see each other's marker.
        let state =
            std::env::temp_dir().join(format!("tripline-state-{}-{port}", std::process::id()));
        let mut child = Command::new(BIN)
            .args(args)
            .args(if args.contains(&"--state.directory") {
                vec![]
            } else {
                vec!["--state.directory".to_string(), state.display().to_string()]
            })
            .args(["--web.listen-address", &listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tripline");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let ev = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => ev.lock().unwrap().push(v),
                    Err(e) => panic!("tripline printed a line that is not JSON ({e}): {line}"),
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let se = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                se.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut e = Exporter {
            child,
            port,
            events,
            stderr,
        };
        e.wait_ready();
        e
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "tripline exited early ({status}): {}",
                    self.stderr.lock().unwrap()
                );
            }
            if let Ok((code, _)) = http_get(self.port, "/readyz") {
                if code == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tripline not ready in 60s: {}", self.stderr.lock().unwrap());
    }

    pub fn metrics(&self) -> String {
        let (code, body) = http_get(self.port, "/metrics").expect("scrape");
        assert_eq!(code, 200);
        body
    }

    /// Value of one sample, e.g. `tripline_events_total{kind="exec"}`; 0 when absent.
    pub fn sample(&self, series: &str) -> f64 {
        sample(&self.metrics(), series)
    }

    /// Waits until `pred` holds for some collected event, and returns the matching events.
    pub fn wait_events(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Value> = self
                .events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| pred(e))
                .cloned()
                .collect();
            if !found.is_empty() || Instant::now() > deadline {
                if found.is_empty() {
                    panic!(
                        "no event for {what} within {timeout:?}; stderr: {}",
                        self.stderr.lock().unwrap()
                    );
                }
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Events matching `pred` collected so far.
    pub fn events_where(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| pred(e))
            .cloned()
            .collect()
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(mut self) -> i32 {
        // SAFETY: plain kill(2) on our child.
        unsafe { kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tripline did not exit within 30s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// GET on loopback: (status, body).
pub fn http_get(port: u16, path: &str) -> reqwest::Result<(u16, String)> {
    http_get_accept(port, path, "*/*").map(|(code, _, body)| (code, body))
}

/// GET on loopback with an Accept header: (status, content type, body).
pub fn http_get_accept(
    port: u16,
    path: &str,
    accept: &str,
) -> reqwest::Result<(u16, String, String)> {
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header(reqwest::header::ACCEPT, accept)
        .send()?;
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok((code, ct, resp.text()?))
}

pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The kernel thread id of the calling thread (events carry `thread.id`).
pub fn gettid() -> i64 {
    extern "C" {
        fn gettid() -> i32;
    }
    // SAFETY: gettid has no preconditions.
    i64::from(unsafe { gettid() })
}

/// Every JSON line of a file (the JSON-lines sink), skipping none that parse.
pub fn read_jsonl(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits (30 s) for a line of `path` that satisfies `pred`.
pub fn wait_jsonl(path: &std::path::Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_jsonl_for(path, what, |lines| lines.into_iter().find(|f| pred(f)))
}

/// Waits (30 s) until `find` answers from the lines of `path`.
pub fn wait_jsonl_for<T>(
    path: &std::path::Path,
    what: &str,
    find: impl Fn(Vec<Value>) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(x) = find(read_jsonl(path)) {
            return x;
        }
        assert!(
            Instant::now() < deadline,
            "no line for {what}; lines: {:#?}",
            read_jsonl(path)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh directory for one test under cargo's target tmp dir.
pub fn test_dir(name: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `<dir>/app` and a configuration file that watches it (`sensor.app_dirs`).
pub fn app_dir_config(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let config = dir.join("tripline.yml");
    std::fs::write(
        &config,
        format!("sensor:\n  app_dirs: [{}]\n", app.display()),
    )
    .unwrap();
    (app, config)
}

/// What each part of a finding says (its body when it has one part).
pub fn part_texts(f: &Value) -> Vec<String> {
    match f["tripline.finding.parts"].as_array() {
        Some(a) => a
            .iter()
            .filter_map(|p| p.as_str().map(String::from))
            .collect(),
        None => vec![s(f, "body")],
    }
}

/// Whether a part of a finding is something `pid` did: each part's summary names its actor as
/// `(pid N, ppid M, …)`. A finding correlates a process's news with its children's, so a helper's part
/// may be told inside the finding of a parent that had news of its own (a test that listened on a new
/// port): look for it by part, not by who leads the finding.
pub fn part_by(part: &str, pid: i64) -> bool {
    part.contains(&format!("(pid {pid},"))
}

/// Whether a part of a finding is something a child of `pid` did (its summary's `, ppid N,`).
pub fn part_by_child_of(part: &str, pid: i64) -> bool {
    part.contains(&format!(", ppid {pid},"))
}

/// The parts of a finding that `pid` did ([`part_by`]).
pub fn parts_of(f: &Value, pid: i64) -> Vec<String> {
    part_texts(f)
        .into_iter()
        .filter(|p| part_by(p, pid))
        .collect()
}

pub fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_string()
}

pub fn i(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(|x| x.as_i64()).unwrap_or(i64::MIN)
}

impl Exporter {
    /// Polls `cond` until it holds (generous deadline), for state visible only through the API.
    pub fn wait_events_metric(&self, what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Runs a command to completion, asserting success; returns its pid (to find its events).
pub fn run_ok(program: &str, args: &[&str]) -> i64 {
    let mut c = std::process::Command::new(program)
        .args(args)
        .spawn()
        .expect("spawn");
    let pid = i64::from(c.id());
    assert!(c.wait().unwrap().success(), "{program} {args:?} failed");
    pid
}
