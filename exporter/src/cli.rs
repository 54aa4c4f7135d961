//! Command line: Prometheus-style dotted flags, shared by the daemon and `tripline events`.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::sinks::EventLevel;

#[derive(Debug, Parser)]
#[command(
    name = "tripline",
    version,
    long_version = crate::build_info::LONG_VERSION,
    about = "Per-host Linux security-signals exporter: eBPF events to Prometheus metrics, OTLP logs and findings",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter (the default when no command is given).
    Run,
    /// Run the sensor and stream every decoded event as JSON lines to stdout (metrics are still served).
    Events,
    /// Validate the configuration (embedded default or --config.file) and exit.
    CheckConfig(CheckConfigArgs),
    /// Inspect, compare, merge and accept behaviour baselines (CI gates, fleet models).
    #[command(subcommand)]
    Baseline(crate::detect::cli::BaselineCommand),
    /// Check a rule policy file, or print the default policy.
    #[command(subcommand)]
    Policy(crate::detect::cli::PolicyCommand),
    /// Run safe attacker-like scenarios on this host and check a running exporter detects each.
    Gameday(crate::gameday::GamedayArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write tripline.1 and one tripline-<command>.1 page
    /// per command into a directory.
    Man {
        /// Directory to write every page into (created if missing).
        #[arg(long = "dir")]
        dir: Option<PathBuf>,
    },
    /// Internal: actions of gameday scenario processes.
    #[command(subcommand, hide = true)]
    GamedayHelper(crate::gameday::Helper),
}

#[derive(Debug, Args, Clone, Default)]
pub struct CheckConfigArgs {
    /// Print the JSON Schema of the configuration file instead of checking a configuration.
    #[arg(long)]
    pub schema: bool,
    /// Check the files' content only, for a configuration meant for another host or a container:
    /// skip what depends on this host (procfs, writable state/baseline/output directories, policy and
    /// baseline files that do not exist here).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Address to serve metrics and the API on; `:9799` means every interface.
    #[arg(long = "web.listen-address", default_value = ":9799", global = true, value_parser = parse_listen_address)]
    pub listen_address: ListenAddress,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics", global = true, value_parser = parse_telemetry_path)]
    pub telemetry_path: String,

    /// Web configuration file (exporter-toolkit format: TLS, client certificates, basic auth, headers).
    /// Protects /metrics and /api/*. See docs/configuration.md.
    #[arg(long = "web.config.file", global = true)]
    pub web_config_file: Option<PathBuf>,

    /// Serve /api/* on this separate address instead of --web.listen-address (same web config).
    #[arg(long = "web.api.listen-address", global = true, value_parser = parse_listen_address, conflicts_with = "no_web_api")]
    pub api_listen_address: Option<ListenAddress>,

    /// Do not serve /api/* at all (findings and baselines stay off the network).
    #[arg(long = "no-web.api", global = true)]
    pub no_web_api: bool,

    /// Close a connection whose request headers have not fully arrived within this time.
    #[arg(long = "web.header-read-timeout", default_value = "10s", global = true, value_parser = parse_positive_duration)]
    pub header_read_timeout: std::time::Duration,

    /// Close a connection that carried no request for this long (keep-alive and never-used ones).
    #[arg(long = "web.idle-timeout", default_value = "60s", global = true, value_parser = parse_positive_duration)]
    pub idle_timeout: std::time::Duration,

    /// Most simultaneous HTTP connections; more wait in the kernel's accept queue.
    #[arg(long = "web.max-connections", default_value = "512", global = true, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,

    /// State directory for the clean-shutdown marker (`tripline.state`). Default: the baseline file's
    /// directory when --baseline.file is set, else /var/lib/tripline.
    #[arg(long = "state.directory", global = true)]
    pub state_directory: Option<PathBuf>,

    /// How often tripline verifies its own programs, links, maps and kernel counters (tamper checks).
    #[arg(long = "tamper.check-interval", default_value = "5s", global = true, value_parser = parse_positive_duration)]
    pub tamper_check_interval: std::time::Duration,

    /// Keep the process's capabilities after the probes attach (default: drop them all, see
    /// docs/configuration.md#privileges). For debugging only.
    #[arg(long = "no-privileges.drop", global = true)]
    pub keep_privileges: bool,

    /// Configuration file (YAML). Without it the embedded defaults are used.
    #[arg(long = "config.file", global = true)]
    pub config_file: Option<PathBuf>,

    /// Log level: error, warn, info, debug, trace.
    #[arg(long = "log.level", default_value = "info", global = true, value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,

    /// Log format on stderr: logfmt or json (one line per event; colour only on a terminal).
    #[arg(
        long = "log.format",
        default_value = "logfmt",
        global = true,
        value_enum
    )]
    pub log_format: crate::logging::LogFormat,

    /// Write findings (and events, see --events.level) as JSON lines to this file, or `-` for stdout.
    #[arg(long = "events.output", global = true)]
    pub events_output: Option<PathBuf>,

    /// Which events go to --events.output besides findings.
    #[arg(long = "events.level", global = true, value_enum)]
    pub events_level: Option<EventLevel>,

    /// Kernel ring buffer size in bytes (power of two, >= 4096); overrides sensor.ring_buffer_bytes.
    #[arg(long = "sensor.ring-buffer-bytes", global = true)]
    pub ring_buffer_bytes: Option<u32>,

    /// procfs mount point (for the process-tree seed).
    #[arg(long = "path.procfs", global = true)]
    pub procfs: Option<PathBuf>,

    /// Rule policy file (replaces the embedded default policy).
    #[arg(long = "policy.file", global = true)]
    pub policy_file: Option<PathBuf>,

    /// Baseline state file: loaded at start, written periodically and on shutdown.
    #[arg(long = "baseline.file", global = true)]
    pub baseline_file: Option<PathBuf>,

    /// learn (record only), monitor (new behaviour is an anomaly) or auto (learn, then monitor).
    #[arg(long = "baseline.mode", global = true, value_enum)]
    pub baseline_mode: Option<crate::detect::baseline::Mode>,

    /// auto mode: how long to learn before monitoring (e.g. 10m, 30s).
    #[arg(long = "baseline.learn-for", global = true, value_parser = humantime::parse_duration)]
    pub baseline_learn_for: Option<std::time::Duration>,

    /// auto mode: switch to monitoring once no new key appeared for this long (0s = off).
    #[arg(long = "baseline.quiet-period", global = true, value_parser = humantime::parse_duration)]
    pub baseline_quiet_period: Option<std::time::Duration>,

    /// OTLP collector endpoint for logs (turns OTLP export on), e.g. http://127.0.0.1:4317.
    #[arg(long = "otlp.endpoint", global = true)]
    pub otlp_endpoint: Option<String>,

    /// OTLP protocol: grpc or http/protobuf.
    #[arg(long = "otlp.protocol", global = true, value_enum)]
    pub otlp_protocol: Option<crate::sinks::otlp::OtlpProtocol>,

    /// Events sent over OTLP besides findings: none, exec, all.
    #[arg(long = "otlp.events", global = true, value_enum)]
    pub otlp_events: Option<EventLevel>,

    /// Kernel BTF used to resolve struct offsets.
    #[arg(
        long = "path.btf",
        default_value = "/sys/kernel/btf/vmlinux",
        global = true
    )]
    pub btf: PathBuf,
}

/// Writes `tripline.1` and `tripline-<command>.1` for every visible command (and nested command)
/// into `dir`. Returns how many pages were written.
pub fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<usize> {
    use anyhow::Context as _;
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut n = 0;
    let mut stack = vec![(String::from("tripline"), cmd)];
    while let Some((name, cmd)) = stack.pop() {
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            stack.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.clone().name(name.clone()))
            .render(&mut out)
            .with_context(|| format!("rendering {name}.1"))?;
        std::fs::write(&path, out).with_context(|| format!("{}: cannot write", path.display()))?;
        n += 1;
    }
    Ok(n)
}

pub use crate::server::ListenAddress;

fn parse_listen_address(s: &str) -> Result<ListenAddress, String> {
    if s.is_empty() {
        return Ok(ListenAddress::Disabled);
    }
    if let Some(port) = s.strip_prefix(':') {
        return port.parse::<u16>().map(ListenAddress::Any).map_err(|_| {
            format!(
                "{s:?}: the port must be a number from 0 to 65535 (e.g. :9799 or 127.0.0.1:9799)"
            )
        });
    }
    s.parse::<SocketAddr>().map(ListenAddress::Addr).map_err(|_| {
        format!("{s:?} is not an address: use :PORT, IPv4:PORT or [IPv6]:PORT (e.g. :9799, 127.0.0.1:9799, [::1]:9799)")
    })
}

fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 10s, 1m)"))?;
    if d.is_zero() || d > std::time::Duration::from_secs(86_400) {
        return Err(format!("{s:?}: must be more than 0s and at most 24h"));
    }
    Ok(d)
}

/// Paths the server already routes; the telemetry path may not take one of them (or live under /api/).
pub const RESERVED_PATHS: &[&str] = &["/", "/healthz", "/readyz"];

fn parse_telemetry_path(s: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~');
    if !s.starts_with('/') || s.len() < 2 || s.len() > 256 {
        return Err(format!(
            "{s:?}: the telemetry path must start with '/', not be '/' and be at most 256 bytes (e.g. /metrics)"
        ));
    }
    if let Some(c) = s.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "{s:?}: {c:?} is not allowed in the telemetry path; use letters, digits and / - _ . ~ (e.g. /metrics)"
        ));
    }
    if s.contains("//") || s.ends_with('/') || s.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!(
            "{s:?}: the telemetry path may not contain empty, '.' or '..' segments or end with '/' (e.g. /metrics)"
        ));
    }
    if RESERVED_PATHS.contains(&s) || s == "/api" || s.starts_with("/api/") {
        return Err(format!(
            "{s:?} is already served by tripline (/, /healthz, /readyz, /api/...): choose another telemetry path (e.g. /metrics)"
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listen_addresses() {
        assert_eq!(
            parse_listen_address(":9799").unwrap(),
            ListenAddress::Any(9799)
        );
        assert_eq!(
            parse_listen_address("127.0.0.1:1").unwrap(),
            ListenAddress::Addr("127.0.0.1:1".parse().unwrap())
        );
        assert!(parse_listen_address(":x")
            .unwrap_err()
            .contains("port must be a number"));
        assert!(parse_listen_address("localhost")
            .unwrap_err()
            .contains("is not an address"));
        assert_eq!(parse_listen_address("").unwrap(), ListenAddress::Disabled);
    }

    #[test]
    fn rejects_bad_telemetry_path() {
        assert!(parse_telemetry_path("metrics").is_err());
        assert!(parse_telemetry_path("/").is_err());
        assert_eq!(parse_telemetry_path("/m").unwrap(), "/m");
        assert_eq!(
            parse_telemetry_path("/probe/metrics.v1").unwrap(),
            "/probe/metrics.v1"
        );
        // These made `run` panic in the router (issue 12).
        for bad in [
            "/healthz",
            "/readyz",
            "/api/v1/status",
            "/api",
            "/m{x",
            "/m}x",
            "/:id",
            "/*rest",
            "/a//b",
            "/a/",
            "/a/../b",
        ] {
            assert!(parse_telemetry_path(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn man_pages_cover_every_command() {
        let dir = std::env::temp_dir().join(format!("tripline-man-{}", std::process::id()));
        let n = write_man_pages(&dir).unwrap();
        for page in [
            "tripline.1",
            "tripline-run.1",
            "tripline-baseline-merge.1",
            "tripline-check-config.1",
        ] {
            let text = std::fs::read_to_string(dir.join(page)).unwrap();
            assert!(text.contains(".TH"), "{page} is not roff");
        }
        assert!(
            !dir.join("tripline-gameday-helper.1").exists(),
            "hidden commands get no page"
        );
        assert!(
            !dir.join("tripline-help.1").exists(),
            "no pages for clap's help command"
        );
        assert!(n >= 12, "{n} pages");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flags_are_global() {
        let cli =
            Cli::try_parse_from(["tripline", "events", "--web.listen-address", "127.0.0.1:9"])
                .unwrap();
        assert!(matches!(cli.command, Some(Command::Events)));
        assert_eq!(
            cli.run.listen_address,
            ListenAddress::Addr("127.0.0.1:9".parse().unwrap())
        );
    }
}
