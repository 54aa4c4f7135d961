//! `tripline gameday`: a coverage suite of safe, self-cleaning, attacker-like behaviours run on this
//! host against a running exporter. Each scenario is a behaviour class tagged with its MITRE ATT&CK
//! technique and tried in several spellings ([`catalogue`]); each spelling is checked for a finding
//! with its time to detection. `--json` prints the report, `--markdown` writes docs/coverage.md.
//!
//! Everything runs as child processes of this command, talks only to loopback listeners it opens itself,
//! and lives in one work directory that is removed at the end; what a scenario writes elsewhere it
//! removes itself (docs/gameday.md).
pub mod catalogue;

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
    /// How long to wait for a spelling expected to go undetected (a known gap) before moving on
    /// (longer than the exporter's correlation window, so a gap that is detected after all shows).
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    pub gap_wait: Duration,
    /// Also write the coverage table (docs/coverage.md format) to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

/// Helper actions run by scenario child processes (`tripline gameday-helper …`).
#[derive(Debug, Subcommand)]
pub enum Helper {
    /// Connect to ADDR and close.
    Connect { addr: String },
    /// Listen on a loopback port for a moment.
    Listen,
    /// Listen on a loopback port, print it, accept until killed (the scenarios' peer: gameday itself
    /// must not listen, or every shell it starts would look spawned by a network-facing server).
    Serve,
    /// Execute FILE from an anonymous memory file (memfd_create + fexecve).
    MemfdExec { file: PathBuf },
}

use catalogue::{Expect, Spelling, Step, SCENARIOS};

#[derive(Debug, serde::Serialize)]
struct SpellingReport {
    spelling: &'static str,
    /// `rule`, `anomaly` or `gap`.
    expect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gap: Option<&'static str>,
    detected: bool,
    /// Rule findings (and anomalies) about the spelling's processes, rules first.
    findings: Vec<String>,
    severity: Option<String>,
    seconds_to_detection: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Detected only when the spelling ran a second time (reported, never hidden).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    retried: bool,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    scenario: &'static str,
    tactic: &'static str,
    technique: &'static str,
    what: &'static str,
    spellings: Vec<SpellingReport>,
}

impl SpellingReport {
    /// A spelling that should have been detected and was not.
    fn missed(&self, monitoring: bool) -> bool {
        self.skipped.is_none()
            && !self.detected
            && match self.expect {
                "rule" => true,
                "anomaly" => monitoring,
                _ => false,
            }
    }
}

pub fn run_helper(h: Helper) -> anyhow::Result<ExitCode> {
    match h {
        Helper::Connect { addr } => {
            let _s = TcpStream::connect(&addr)?;
        }
        Helper::Serve => {
            let l = TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?);
            std::io::stdout().flush()?;
            // Accepted connections stay open (as an attacker's listener keeps them) until killed.
            let mut held = Vec::new();
            for c in l.incoming().flatten() {
                held.push(c);
            }
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

/// A loopback listener in a child process (`gameday-helper serve`), killed when dropped.
struct Server {
    child: std::process::Child,
    addr: String,
}

impl Server {
    fn start(exe: &Path) -> anyhow::Result<Server> {
        let mut child = Command::new(exe)
            .args(["gameday-helper", "serve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        let out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
        let addr = line.trim().to_string();
        anyhow::ensure!(addr.contains(':'), "gameday-helper serve printed {line:?}");
        Ok(Server { child, addr })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// What a spelling's script may refer to.
struct Vars {
    /// `tripline-gameday-<pid>-<n>`: unique per spelling, so no two spellings touch the same path.
    tag: String,
    port: String,
    python: String,
    exporter_pid: Option<u32>,
}

fn expand(script: &str, w: &Work, v: &Vars) -> anyhow::Result<String> {
    let mut out = script
        .replace("{w}", &w.dir.display().to_string())
        .replace("{t}", &v.tag)
        .replace("{port}", &v.port)
        .replace("{self}", &w.exe.display().to_string())
        .replace("{py}", &v.python);
    if out.contains("{tpid}") {
        let pid = v
            .exporter_pid
            .ok_or_else(|| anyhow::anyhow!("the exporter's pid was not found in /proc"))?;
        out = out.replace("{tpid}", &pid.to_string());
    }
    Ok(out)
}

/// Runs one spelling; returns the pid whose findings (its own and its children's) count for it.
fn run_spelling(sp: &Spelling, w: &Work, v: &Vars, addr: &str) -> anyhow::Result<Vec<u32>> {
    let sh = Path::new("/bin/sh");
    // Copies live in one directory per source, so `nc` the shell and `nc` the listener differ.
    let renamed = |from: &Path, name: &str| -> anyhow::Result<PathBuf> {
        let dir = w.dir.join(from.file_name().unwrap_or_default());
        std::fs::create_dir_all(&dir)?;
        let to = dir.join(name);
        if !to.exists() {
            copy_exec(from, &to)?;
        }
        Ok(to)
    };
    match sp.step {
        Step::Sh(script) => status(Command::new(sh).args(["-c", &expand(script, w, v)?])),
        Step::As(name, script) => {
            status(Command::new(renamed(sh, name)?).args(["-c", &expand(script, w, v)?]))
        }
        Step::Py(script) => status(Command::new(&v.python).args(["-c", &expand(script, w, v)?])),
        Step::PyAs(name, script) => {
            let py = renamed(Path::new(&v.python), name)?;
            status(Command::new(py).args(["-c", &expand(script, w, v)?]))
        }
        Step::MemfdExec => {
            status(Command::new(&w.exe).args(["gameday-helper", "memfd-exec", "/bin/true"]))
        }
        Step::ConnectAs(name) => {
            status(Command::new(renamed(&w.exe, name)?).args(["gameday-helper", "connect", addr]))
        }
        Step::ListenAs(name) => {
            status(Command::new(renamed(&w.exe, name)?).args(["gameday-helper", "listen"]))
        }
    }
}

/// The exporter's pid: the process holding the listening socket of `port` (several exporters may run
/// on one host; the target's is the one that matters).
fn exporter_pid(port: u16) -> Option<u32> {
    let hex = format!(":{port:04X} ");
    let mut inodes = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode in column 10.
            if f.len() > 9 && format!("{} ", f[1]).ends_with(&hex) && f[3] == "0A" {
                inodes.insert(format!("socket:[{}]", f[9]));
            }
        }
    }
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|l| inodes.contains(&l.display().to_string()))
            .then_some(pid)
    })
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

/// What was found about one of `pids` (the process itself or its child).
#[derive(Debug, Default, PartialEq)]
struct Found {
    /// `rule <id>` and `anomaly <model>` names, rules first.
    names: Vec<String>,
    rule: bool,
    anomaly: bool,
    /// The highest severity among the rule findings (or the anomalies when no rule fired).
    severity: Option<String>,
}

fn find(findings: &[Value], pids: &BTreeSet<i64>) -> Found {
    let mut f = Found::default();
    let mut sev: Vec<crate::model::Severity> = Vec::new();
    for x in findings {
        let pid = x.get("process.pid").and_then(Value::as_i64).unwrap_or(-1);
        let ppid = x
            .get("process.parent_pid")
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        // A finding groups every part of one process and its children: the spelling's processes may
        // lead it or be one of its parts (each part's summary names its pid).
        let parts: Vec<&str> = x
            .get("tripline.finding.parts")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let leads = pids.contains(&pid) || pids.contains(&ppid);
        let mine: Vec<&str> = parts
            .iter()
            .copied()
            // A part names its process and that process's parent: the spelling's process or a child.
            .filter(|p| {
                leads
                    || pids.iter().any(|q| {
                        p.contains(&format!("(pid {q},")) || p.contains(&format!(", ppid {q},"))
                    })
            })
            .collect();
        if !leads && mine.is_empty() {
            continue;
        }
        let before = f.names.len();
        if mine.is_empty() {
            if let Some(r) = x.get("security_rule.name").and_then(Value::as_str) {
                f.names.push(format!("rule {r}"));
            } else if let Some(m) = x.get("tripline.baseline.model").and_then(Value::as_str) {
                f.names.push(format!("anomaly {m}"));
            }
        }
        for p in mine {
            match p.strip_prefix("new ") {
                Some(rest) => f.names.push(format!(
                    "anomaly {}",
                    rest.split(' ').next().unwrap_or(rest)
                )),
                None => f
                    .names
                    .push(format!("rule {}", p.split(':').next().unwrap_or(p))),
            }
        }
        let added = &f.names[before..];
        f.rule |= added.iter().any(|n| n.starts_with("rule "));
        f.anomaly |= added.iter().any(|n| n.starts_with("anomaly "));
        sev.extend(
            x.get("tripline.finding.severity")
                .and_then(Value::as_str)
                .and_then(crate::model::Severity::parse),
        );
    }
    f.names.sort_by_key(|n| (!n.starts_with("rule"), n.clone()));
    f.names.dedup();
    f.severity = sev.into_iter().max().map(|s| s.as_str().to_string());
    f
}

fn expect_name(e: Expect) -> (&'static str, Option<&'static str>) {
    match e {
        Expect::Rule => ("rule", None),
        Expect::Anomaly => ("anomaly", None),
        Expect::Gap(why) => ("gap", Some(why)),
    }
}

/// The system Python (not a shim that execs another interpreter).
fn system_python() -> String {
    ["/usr/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("python3")
        .to_string()
}

/// Runs one spelling and waits for its finding.
fn check_spelling(
    sp: &Spelling,
    work: &Work,
    vars: &Vars,
    addr: &str,
    hostport: &str,
    args: &GamedayArgs,
) -> anyhow::Result<SpellingReport> {
    let (expect, gap) = expect_name(sp.expect);
    let mut r = SpellingReport {
        spelling: sp.label,
        expect,
        gap,
        detected: false,
        findings: Vec::new(),
        severity: None,
        seconds_to_detection: None,
        skipped: None,
        error: None,
        retried: false,
    };
    if let Some(req) = sp.requires {
        if std::fs::symlink_metadata(req).is_err() {
            r.skipped = Some(format!("{req} does not exist on this host"));
            return Ok(r);
        }
    }
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs_f64()
        - 1.0;
    let started = Instant::now();
    let pids = match run_spelling(sp, work, vars, addr) {
        Err(e) => {
            r.error = Some(format!("{e:#}"));
            return Ok(r);
        }
        Ok(p) => p.into_iter().map(i64::from).collect::<BTreeSet<i64>>(),
    };
    let wait = match sp.expect {
        Expect::Gap(_) => args.gap_wait,
        _ => args.timeout,
    };
    let counts = |f: &Found| f.rule || (sp.expect == Expect::Anomaly && f.anomaly);
    loop {
        let body = http_get(hostport, &format!("/api/v1/findings?since={since:.3}"))?;
        let findings: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        let f = find(&findings, &pids);
        if counts(&f) {
            r.detected = true;
            r.seconds_to_detection = Some(started.elapsed().as_secs_f64());
            // Give related findings (a child's rule after the parent's anomaly) a moment.
            std::thread::sleep(Duration::from_millis(300));
            let body = http_get(hostport, &format!("/api/v1/findings?since={since:.3}"))?;
            let f = find(
                &serde_json::from_str::<Vec<Value>>(&body).unwrap_or_default(),
                &pids,
            );
            r.findings = f.names;
            r.severity = f.severity;
            return Ok(r);
        }
        if started.elapsed() >= wait {
            r.findings = f.names;
            return Ok(r);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Whether the exporter reports anomalies now (its baselines are past learning).
fn monitoring(hostport: &str) -> bool {
    http_get(hostport, "/metrics").is_ok_and(|m| {
        m.lines()
            .any(|l| l.starts_with("tripline_baseline_learning{") && l.ends_with(" 0"))
    })
}

fn print_spelling(scenario: &str, technique: &str, r: &SpellingReport) {
    let verdict = match (r.detected, r.expect, &r.skipped, &r.error) {
        (_, _, Some(_), _) => "SKIPPED",
        (_, _, _, Some(_)) => "ERROR",
        (true, "gap", _, _) => "DETECTED+",
        (true, _, _, _) if r.retried => "DETECTED*",
        (true, _, _, _) => "DETECTED",
        (false, "gap", _, _) => "GAP",
        (false, _, _, _) => "MISSED",
    };
    let detail = r
        .error
        .clone()
        .or(r.skipped.clone())
        .or((!r.findings.is_empty()).then(|| r.findings.join(", ")))
        .or(r.gap.map(String::from))
        .unwrap_or_else(|| "-".into());
    println!(
        "{:<28} {:<10} {:<38} {:<9} {:>5}  {detail}",
        scenario,
        technique,
        r.spelling,
        verdict,
        r.seconds_to_detection
            .map(|t| format!("{t:.1}s"))
            .unwrap_or_default(),
    );
}

// Long on purpose: one linear script (preflight, each scenario in turn, the report); splitting it would
// scatter the order a reader needs to follow.
pub fn run(args: GamedayArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        for s in SCENARIOS {
            println!(
                "{:<28} {:<22} {:<10} {}",
                s.name, s.tactic, s.technique, s.what
            );
            for sp in s.spellings {
                let (e, why) = expect_name(sp.expect);
                println!(
                    "    - {} [{e}{}]",
                    sp.label,
                    why.map(|w| format!(": {w}")).unwrap_or_default()
                );
            }
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
    let monitoring = monitoring(&hostport);
    let work = Work {
        dir: tempfile_dir(&args.workdir.display().to_string())?,
        exe: std::env::current_exe()?,
    };
    let server = Server::start(&work.exe)?;
    let addr = server.addr.clone();
    let mut vars = Vars {
        tag: format!("tripline-gameday-{}", std::process::id()),
        port: addr
            .rsplit_once(':')
            .map(|(_, p)| p.to_string())
            .unwrap_or_default(),
        python: system_python(),
        exporter_pid: hostport
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .and_then(exporter_pid),
    };
    let mut reports = Vec::new();
    let mut n = 0;
    for s in SCENARIOS
        .iter()
        .filter(|s| args.only.is_empty() || args.only.iter().any(|o| o == s.name))
    {
        let mut report = Report {
            scenario: s.name,
            tactic: s.tactic,
            technique: s.technique,
            what: s.what,
            spellings: Vec::new(),
        };
        for sp in s.spellings {
            n += 1;
            vars.tag = format!("tripline-gameday-{}-{n}", std::process::id());
            let mut r = check_spelling(sp, &work, &vars, &addr, &hostport, &args)?;
            // A miss is run once more: a short-lived process can be gone before tripline reads what it
            // needs from /proc (its stdio, its cwd). The report says when it took a second run.
            if !r.detected && r.skipped.is_none() && r.error.is_none() && r.expect != "gap" {
                let again = check_spelling(sp, &work, &vars, &addr, &hostport, &args)?;
                if again.detected {
                    r = SpellingReport {
                        retried: true,
                        ..again
                    };
                }
            }
            if !args.json {
                print_spelling(s.name, s.technique, &r);
            }
            report.spellings.push(r);
        }
        reports.push(report);
    }
    let all = || reports.iter().flat_map(|r| r.spellings.iter());
    let missed = all().filter(|r| r.missed(monitoring)).count();
    let ran = all().filter(|r| r.skipped.is_none()).count();
    let detected = all().filter(|r| r.detected).count();
    let gaps = all()
        .filter(|r| r.skipped.is_none() && r.expect == "gap" && !r.detected)
        .count();
    if let Some(path) = &args.markdown {
        std::fs::write(path, markdown(&reports))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "scenarios": reports,
                "spellings_run": ran,
                "detected": detected,
                "missed": missed,
                "known_gaps": gaps,
                "monitoring": monitoring,
            }))?
        );
    } else {
        println!(
            "{} scenarios, {ran} spellings run: {detected} detected, {missed} missed, {gaps} known gaps{}",
            reports.len(),
            if monitoring { "" } else { " (exporter still learning: anomalies not required)" }
        );
    }
    Ok(if missed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// docs/coverage.md: one row per scenario (technique, scenario, spellings detected, fired signal,
/// severity, time to detect), then the known gaps with their reasons. CI compares the first three
/// columns with the committed file; the rest depends on the host and the run.
fn markdown(reports: &[Report]) -> String {
    let mut out = String::from(
        "# Detection coverage\n\n\
         Generated by `tripline gameday --markdown docs/coverage.md` against a running exporter (the stack \
         test does this on every CI run and fails when the Tactic, Technique or Scenario columns differ from \
         this file; the other columns depend on the host and the run). Each scenario is a behaviour class tried \
         in several spellings; `Detected` counts the spellings a rule (or, where expected, a baseline anomaly) \
         reported, of those that ran on the host. See [gameday.md](gameday.md) for what each one does.\n\n\
         | Tactic | Technique | Scenario | Detected | Fired signal | Severity | Time to detect |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let ran: Vec<&SpellingReport> =
            r.spellings.iter().filter(|s| s.skipped.is_none()).collect();
        let det = ran.iter().filter(|s| s.detected).count();
        let mut signals: Vec<String> = ran
            .iter()
            .filter(|s| s.detected)
            .flat_map(|s| s.findings.iter().filter(|f| f.starts_with("rule")).cloned())
            .collect();
        if signals.is_empty() {
            signals = ran
                .iter()
                .filter(|s| s.detected)
                .flat_map(|s| s.findings.iter().cloned())
                .collect();
        }
        signals.sort();
        signals.dedup();
        let sev = ran
            .iter()
            .filter_map(|s| {
                s.severity
                    .as_deref()
                    .and_then(crate::model::Severity::parse)
            })
            .max()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "-".into());
        let ttd = ran
            .iter()
            .filter_map(|s| s.seconds_to_detection)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))
            .map(|t| format!("≤ {t:.1}s"))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "| {} | {} | `{}` | {det}/{} | {} | {sev} | {ttd} |\n",
            r.tactic,
            r.technique,
            r.scenario,
            ran.len(),
            if signals.is_empty() {
                "-".into()
            } else {
                cell(&signals.join(", "))
            },
        ));
    }
    out.push_str("\n## Known gaps\n\nSpellings kept in the suite that tripline does not detect yet, and why.\n\n| Scenario | Spelling | Reason |\n|---|---|---|\n");
    for r in reports {
        for s in r.spellings.iter().filter(|s| s.gap.is_some()) {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                r.scenario,
                cell(s.spelling),
                cell(s.gap.unwrap_or_default())
            ));
        }
    }
    out
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
            serde_json::json!({"process.pid": 9, "process.parent_pid": 7, "security_rule.name": "shell_spawned_by_server", "tripline.finding.severity": "high"}),
        ];
        let got = find(&f, &BTreeSet::from([7]));
        assert_eq!(got.names, vec!["rule shell_spawned_by_server"]);
        assert!(got.rule && !got.anomaly);
        assert_eq!(got.severity.as_deref(), Some("high"));
        let mut g = f.clone();
        g.push(serde_json::json!({"process.pid": 7, "tripline.baseline.model": "process_lineage", "tripline.finding.severity": "medium"}));
        let got = find(&g, &BTreeSet::from([7]));
        assert_eq!(
            got.names,
            vec!["rule shell_spawned_by_server", "anomaly process_lineage"]
        );
        assert_eq!(got.severity.as_deref(), Some("high"));
        assert_eq!(find(&f, &BTreeSet::from([8])), Found::default());
    }

    #[test]
    fn catalogue_is_a_coverage_suite() {
        assert!(SCENARIOS.len() >= 40, "{} scenarios", SCENARIOS.len());
        let mut names = BTreeSet::new();
        let mut tactics = BTreeSet::new();
        for s in SCENARIOS {
            assert!(names.insert(s.name), "duplicate scenario {}", s.name);
            tactics.insert(s.tactic);
            let t = s.technique;
            assert!(
                t.starts_with('T')
                    && t[1..]
                        .split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
                "{}: {t} is not a technique id",
                s.name
            );
            assert!(!s.spellings.is_empty(), "{}", s.name);
        }
        for t in [
            "persistence",
            "privilege-escalation",
            "defense-evasion",
            "credential-access",
            "discovery",
            "execution",
            "command-and-control",
        ] {
            assert!(tactics.contains(t), "no scenario for {t}");
        }
        let multi = SCENARIOS.iter().filter(|s| s.spellings.len() >= 2).count();
        assert!(
            multi * 2 >= SCENARIOS.len(),
            "most scenarios have several spellings"
        );
    }

    #[test]
    fn committed_coverage_lists_every_scenario() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/coverage.md");
        let text = std::fs::read_to_string(path).unwrap();
        for s in SCENARIOS {
            let row = format!("| {} | {} | `{}` |", s.tactic, s.technique, s.name);
            assert!(text.contains(&row), "docs/coverage.md has no row {row}");
        }
    }

    #[test]
    fn markdown_rows_and_gaps() {
        let reports = vec![Report {
            scenario: "x",
            tactic: "persistence",
            technique: "T1",
            what: "w",
            spellings: vec![
                SpellingReport {
                    spelling: "a",
                    expect: "rule",
                    gap: None,
                    detected: true,
                    findings: vec!["rule r".into(), "anomaly m".into()],
                    severity: Some("high".into()),
                    seconds_to_detection: Some(0.4),
                    skipped: None,
                    error: None,
                    retried: false,
                },
                SpellingReport {
                    spelling: "b|c",
                    expect: "gap",
                    gap: Some("later"),
                    detected: false,
                    findings: vec![],
                    severity: None,
                    seconds_to_detection: None,
                    skipped: None,
                    error: None,
                    retried: false,
                },
            ],
        }];
        let md = markdown(&reports);
        assert!(
            md.contains("| persistence | T1 | `x` | 1/2 | rule r | high | ≤ 0.4s |"),
            "{md}"
        );
        assert!(md.contains("| `x` | b\\|c | later |"), "{md}");
    }
}
