//! `tripline gameday`: safe, self-cleaning, attacker-like behaviours run on this host against a running
//! exporter, each checked for a finding (rule match or anomaly) with its time to detection.
//!
//! Everything runs as child processes of this command, talks only to loopback listeners it opens itself,
//! and lives in one work directory that is removed at the end. docs/gameday.md lists exactly what each
//! scenario does.
use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct GamedayArgs {
    /// The exporter to check (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:9799")]
    pub target: String,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only these scenarios (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for each detection.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Work directory parent (a fresh directory is created inside and removed at the end).
    #[arg(long, default_value = "/var/lib")]
    pub workdir: PathBuf,
}

/// Helper actions run by scenario child processes (`tripline gameday-helper …`).
#[derive(Debug, Subcommand)]
pub enum Helper {
    /// Connect to ADDR and close.
    Connect { addr: String },
    /// Listen on a loopback port for a moment.
    Listen,
    /// Execute FILE from an anonymous memory file (memfd_create + fexecve).
    MemfdExec { file: PathBuf },
}

struct Scenario {
    name: &'static str,
    what: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "web_shell",
        what: "a process named nginx spawns /bin/sh (web shell / command injection)",
    },
    Scenario {
        name: "new_executable_connects",
        what: "a never-seen executable connects to a loopback listener",
    },
    Scenario {
        name: "interpreter_listens",
        what: "an interpreter-named process opens a listening port",
    },
    Scenario {
        name: "exec_from_tmp",
        what: "a copy of /bin/true runs from /tmp",
    },
    Scenario {
        name: "memfd_exec",
        what: "/bin/true runs from an anonymous memory file (fileless execution)",
    },
    Scenario {
        name: "reverse_shell",
        what: "bash wires its stdin and stdout to a TCP connection to a loopback listener (/dev/tcp)",
    },
    Scenario {
        name: "package_manager",
        what: "dpkg --version runs (package manager in production)",
    },
    Scenario {
        name: "system_binary_dir_write",
        what: "an empty, non-executable file is created in /usr/local/bin and removed (binary directory changed)",
    },
];

#[derive(Debug, serde::Serialize)]
struct Report {
    scenario: &'static str,
    what: &'static str,
    detected: bool,
    finding: Option<String>,
    seconds_to_detection: Option<f64>,
    error: Option<String>,
}

pub fn run_helper(h: Helper) -> anyhow::Result<ExitCode> {
    match h {
        Helper::Connect { addr } => {
            let _s = TcpStream::connect(&addr)?;
        }
        Helper::Listen => {
            let l = TcpListener::bind("127.0.0.1:0")?;
            std::thread::sleep(Duration::from_millis(300));
            drop(l);
        }
        Helper::MemfdExec { file } => {
            let bytes = std::fs::read(&file)?;
            let name = std::ffi::CString::new("gameday")?;
            // SAFETY: plain syscalls with valid arguments; fexecve only returns on failure.
            unsafe {
                let fd = libc::memfd_create(name.as_ptr(), 0);
                anyhow::ensure!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
                let mut f = <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd);
                f.write_all(&bytes)?;
                let argv = [name.as_ptr(), std::ptr::null()];
                let envp: [*const libc::c_char; 1] = [std::ptr::null()];
                f.flush()?;
                libc::fexecve(fd, argv.as_ptr(), envp.as_ptr());
                anyhow::bail!("fexecve: {}", std::io::Error::last_os_error());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `http://HOST:PORT` with a loopback HOST, or an error that says why not.
fn loopback_target(target: &str) -> anyhow::Result<String> {
    let hostport = target
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--target {target:?}: use http://127.0.0.1:PORT"))?
        .trim_end_matches('/');
    let addrs: Vec<_> = hostport
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("--target {target:?}: {e}"))?
        .collect();
    anyhow::ensure!(!addrs.is_empty(), "--target {target:?}: no address");
    for a in &addrs {
        let ip: IpAddr = a.ip();
        anyhow::ensure!(
            ip.is_loopback(),
            "--target {target:?} resolves to {ip}: gameday runs attacker-like behaviour on THIS host and only checks an exporter on loopback"
        );
    }
    Ok(hostport.to_string())
}

fn http_get(hostport: &str, path: &str) -> anyhow::Result<String> {
    let resp = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(format!("http://{hostport}{path}"))
        .send()?;
    anyhow::ensure!(
        resp.status().is_success(),
        "GET {path}: HTTP {}",
        resp.status()
    );
    Ok(resp.text()?)
}

struct Work {
    dir: PathBuf,
    exe: PathBuf,
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Listener that accepts in the background until dropped.
fn listener() -> anyhow::Result<(TcpListener, String)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?.to_string();
    let c = l.try_clone()?;
    // Accepted connections stay open (as an attacker's listener keeps them) until gameday exits.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in c.incoming() {
            match s {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    Ok((l, addr))
}

fn copy_exec(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)?;
    Ok(())
}

fn status(cmd: &mut Command) -> anyhow::Result<Vec<u32>> {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let pid = child.id();
    child.wait()?;
    Ok(vec![pid])
}

/// Runs one scenario; returns the pids whose findings count for it.
fn run_scenario(name: &str, w: &Work) -> anyhow::Result<Vec<u32>> {
    let sh = Path::new("/bin/sh");
    match name {
        "web_shell" => {
            let nginx = w.dir.join("nginx");
            copy_exec(sh, &nginx)?;
            status(Command::new(&nginx).args(["-c", "/bin/sh -c 'exit 0'; exit 0"]))
        }
        "new_executable_connects" => {
            let (_l, addr) = listener()?;
            let beacon = w.dir.join(format!("gameday-beacon-{}", std::process::id()));
            copy_exec(&w.exe, &beacon)?;
            status(Command::new(&beacon).args(["gameday-helper", "connect", &addr]))
        }
        "interpreter_listens" => {
            let py = w.dir.join("python3-gameday");
            copy_exec(&w.exe, &py)?;
            status(Command::new(&py).args(["gameday-helper", "listen"]))
        }
        "exec_from_tmp" => {
            let tmp = tempfile_dir("/tmp")?;
            let payload = tmp.join("payload");
            copy_exec(Path::new("/bin/true"), &payload)?;
            let r = status(&mut Command::new(&payload));
            let _ = std::fs::remove_dir_all(&tmp);
            r
        }
        "memfd_exec" => {
            status(Command::new(&w.exe).args(["gameday-helper", "memfd-exec", "/bin/true"]))
        }
        "reverse_shell" => {
            let (_l, addr) = listener()?;
            let (host, port) = addr.rsplit_once(':').unwrap_or(("127.0.0.1", "0"));
            // The shell's own stdin and stdout on the connection, as `bash -i >& /dev/tcp/...` does;
            // it waits a second for a command that never comes, then exits.
            let script = format!("exec 0<>/dev/tcp/{host}/{port} 1>&0; read -t 1 _ || true");
            let bash = ["/bin/bash", "/usr/bin/bash"]
                .into_iter()
                .find(|p| Path::new(p).exists());
            let bash = bash.ok_or_else(|| anyhow::anyhow!("bash is not installed"))?;
            status(Command::new(bash).args(["-c", &script]))
        }
        "package_manager" => {
            let dpkg = ["/usr/bin/dpkg", "/bin/dpkg"]
                .into_iter()
                .find(|p| Path::new(p).exists());
            let dpkg = dpkg.ok_or_else(|| anyhow::anyhow!("dpkg is not installed"))?;
            status(Command::new(dpkg).arg("--version"))
        }
        "system_binary_dir_write" => {
            let f = format!("/usr/local/bin/.tripline-gameday-{}", std::process::id());
            let script = format!("umask 077; : > {f}; rm -f {f}");
            status(Command::new(sh).args(["-c", &script]))
        }
        other => anyhow::bail!("unknown scenario {other}"),
    }
}

fn tempfile_dir(parent: &str) -> anyhow::Result<PathBuf> {
    let d = Path::new(parent).join(format!(
        "tripline-gameday-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn rand_suffix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

/// Findings about one of `pids` (the process itself or its child): rule matches first, then anomalies.
fn find(findings: &[Value], pids: &BTreeSet<i64>) -> Option<String> {
    let mut names: Vec<String> = Vec::new();
    for f in findings {
        let pid = f.get("process.pid").and_then(Value::as_i64).unwrap_or(-1);
        let ppid = f
            .get("process.parent_pid")
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        // A finding tells every part of one process and its children: the scenario's processes may lead
        // it or be one of its parts (each part names its pid).
        let parts: Vec<&str> = f
            .get("tripline.finding.parts")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let leads = pids.contains(&pid) || pids.contains(&ppid);
        let mine: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| leads || pids.iter().any(|x| p.contains(&format!("(pid {x},"))))
            .collect();
        if !leads && mine.is_empty() {
            continue;
        }
        if mine.is_empty() {
            let lead = f
                .get("security_rule.name")
                .and_then(Value::as_str)
                .map(|r| format!("rule {r}"))
                .or_else(|| {
                    f.get("tripline.baseline.model")
                        .and_then(Value::as_str)
                        .map(|m| format!("anomaly {m}"))
                });
            names.extend(lead);
        }
        for p in mine {
            match p.strip_prefix("new ") {
                Some(rest) => names.push(format!(
                    "anomaly {}",
                    rest.split(' ').next().unwrap_or(rest)
                )),
                None => names.push(format!("rule {}", p.split(':').next().unwrap_or(p))),
            }
        }
    }
    names.sort_by_key(|n| (!n.starts_with("rule"), n.clone()));
    names.dedup();
    (!names.is_empty()).then(|| names.join(", "))
}

// Long on purpose: one linear script (preflight, each scenario in turn, the report); splitting it would
// scatter the order a reader needs to follow.
pub fn run(args: GamedayArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        for s in SCENARIOS {
            println!("{:<26} {}", s.name, s.what);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let hostport = loopback_target(&args.target)?;
    http_get(&hostport, "/readyz")
        .map_err(|e| anyhow::anyhow!("exporter at {} is not ready: {e}", args.target))?;
    for o in &args.only {
        anyhow::ensure!(
            SCENARIOS.iter().any(|s| s.name == o),
            "--only {o:?}: no such scenario (see --list)"
        );
    }
    let work = Work {
        dir: tempfile_dir(&args.workdir.display().to_string())?,
        exe: std::env::current_exe()?,
    };
    let mut reports = Vec::new();
    for s in SCENARIOS
        .iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name))
    {
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_secs_f64()
            - 1.0;
        let started = Instant::now();
        let mut report = Report {
            scenario: s.name,
            what: s.what,
            detected: false,
            finding: None,
            seconds_to_detection: None,
            error: None,
        };
        match run_scenario(s.name, &work) {
            Err(e) => report.error = Some(format!("{e:#}")),
            Ok(pids) => {
                let pids: BTreeSet<i64> = pids.into_iter().map(i64::from).collect();
                while started.elapsed() < args.timeout {
                    let body = http_get(&hostport, &format!("/api/v1/findings?since={since:.3}"))?;
                    let findings: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
                    if let Some(name) = find(&findings, &pids) {
                        report.detected = true;
                        report.seconds_to_detection = Some(started.elapsed().as_secs_f64());
                        // Give related findings (the child's rule after the parent's anomaly) a moment.
                        std::thread::sleep(Duration::from_millis(500));
                        let body =
                            http_get(&hostport, &format!("/api/v1/findings?since={since:.3}"))?;
                        let findings: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
                        report.finding = find(&findings, &pids).or(Some(name));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        if !args.json {
            let verdict = if report.detected {
                "DETECTED"
            } else {
                "MISSED"
            };
            println!(
                "{:<26} {:<9} {:>6}  {}",
                s.name,
                verdict,
                report
                    .seconds_to_detection
                    .map(|t| format!("{t:.1}s"))
                    .unwrap_or_default(),
                report
                    .finding
                    .as_deref()
                    .or(report.error.as_deref())
                    .unwrap_or("-")
            );
        }
        reports.push(report);
    }
    let missed = reports.iter().filter(|r| !r.detected).count();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"scenarios": reports, "missed": missed})
            )?
        );
    } else {
        println!(
            "{} of {} scenarios detected",
            reports.len() - missed,
            reports.len()
        );
    }
    Ok(if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_remote_targets() {
        assert!(loopback_target("http://127.0.0.1:9799").is_ok());
        assert!(loopback_target("http://[::1]:9799").is_ok());
        let e = loopback_target("http://192.0.2.10:9799")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only checks an exporter on loopback"), "{e}");
        assert!(loopback_target("https://127.0.0.1:9799").is_err());
    }

    #[test]
    fn matches_findings_of_the_scenario_or_its_children() {
        let f = vec![
            serde_json::json!({"process.pid": 5, "process.parent_pid": 1, "security_rule.name": "other"}),
            serde_json::json!({"process.pid": 9, "process.parent_pid": 7, "security_rule.name": "shell_spawned_by_server"}),
        ];
        assert_eq!(
            find(&f, &BTreeSet::from([7])),
            Some("rule shell_spawned_by_server".into())
        );
        let mut g = f.clone();
        g.push(serde_json::json!({"process.pid": 7, "tripline.baseline.model": "process_lineage"}));
        assert_eq!(
            find(&g, &BTreeSet::from([7])),
            Some("rule shell_spawned_by_server, anomaly process_lineage".into())
        );
        assert_eq!(find(&f, &BTreeSet::from([8])), None);
    }
}
