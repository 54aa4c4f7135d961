//! The one validation both `tripline check-config` and `tripline run`/`events` perform before anything
//! starts: the configuration with its command-line overrides, the file watch list, the policy, the
//! baseline state file (parsed, and its directory writable), the redaction patterns, the JSON-lines
//! output's directory and the web configuration file. `check-config` saying "OK" means `run` gets past
//! every input check.
use std::path::Path;

use crate::cli::RunArgs;
use crate::config::Config;
use crate::detect::baseline::{self, Baseline};
use crate::detect::policy::Policy;
use crate::enrich::filewatch::FileWatch;
use crate::enrich::redact::Redactor;
use crate::telemetry::metrics::Metrics;
use crate::web::WebConfig;

/// What preflight does with a corrupt baseline state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCorruptBaseline {
    /// `check-config`: report it, touch nothing.
    Report,
    /// `run`: report it and move it aside (`<file>.corrupt-<unix seconds>`) so the next start learns
    /// a new model instead of failing forever; never overwritten.
    MoveAside,
}

/// Everything validated, ready for the pipeline.
#[derive(Debug)]
pub struct Checked {
    pub config: Config,
    /// Where the clean-shutdown marker lives (writable, checked).
    pub state_directory: std::path::PathBuf,
    pub web: WebConfig,
    pub policy_rules: usize,
    /// The watched paths, compiled and expanded once (the sensor loads their kernel prefixes).
    pub watch: FileWatch,
}

/// Validates every input `run` reads. Errors name the file (and line), what is wrong and what is
/// allowed; the binary maps them to exit code 3 (see [`crate::limits::exit`]).
pub fn check(
    args: &RunArgs,
    events_to_stdout: bool,
    corrupt: OnCorruptBaseline,
) -> anyhow::Result<Checked> {
    check_with(args, events_to_stdout, corrupt, Host::This)
}

/// Whose host the configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// This one: everything is checked (`run`, `check-config`).
    This,
    /// Another host or a container (`check-config --offline`): content only; host paths that do not
    /// exist here are skipped.
    Other,
}

pub fn check_with(
    args: &RunArgs,
    events_to_stdout: bool,
    corrupt: OnCorruptBaseline,
    host: Host,
) -> anyhow::Result<Checked> {
    let config = Config::from_args(args, events_to_stdout)?;
    let here = host == Host::This;
    let procfs = &config.sensor.procfs;
    if here && !procfs.join("self/stat").is_file() && !procfs.join("1/stat").is_file() {
        return Err(InputError(format!(
            "sensor.procfs: {} is not a procfs mount (no self/stat or 1/stat under it): give the directory procfs is mounted on (e.g. /proc, or /host/proc in a container)",
            procfs.display()
        ))
        .into());
    }
    let watch = FileWatch::new(&config.sensor.watch_list())
        .map_err(|e| anyhow::Error::new(InputError(format!("sensor.file_watch: {e}"))))?;
    let policy_file = config
        .detect
        .policy_file
        .as_deref()
        .filter(|p| here || p.exists());
    let policy = Policy::load(policy_file)?;
    if let Some(f) = config.detect.baseline.file.as_ref().filter(|_| here) {
        baseline::check_writable(f)?;
        match corrupt {
            OnCorruptBaseline::Report => {
                if f.exists() {
                    Baseline::read(f)?;
                }
            }
            OnCorruptBaseline::MoveAside => {
                Baseline::load_state(f)?;
            }
        }
    }
    Redactor::new(&config.sinks.redaction, &Metrics::default())
        .map_err(|e| anyhow::Error::new(InputError(e.to_string())))?;
    if let Some(p) = config.sinks.jsonl.path.as_ref().filter(|_| here) {
        if p != Path::new("-") {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(InputError(format!(
                    "sinks.jsonl.path: {}: the directory {} does not exist",
                    p.display(),
                    dir.display()
                ))
                .into());
            }
        }
    }
    let web = WebConfig::load(args.web_config_file.as_deref())?;
    let state_directory = state_directory(args, &config);
    if here {
        check_directory_writable(&state_directory)?;
    }
    Ok(Checked {
        config,
        state_directory,
        web,
        policy_rules: policy.rules.len(),
        watch,
    })
}

/// `--state.directory`, else the baseline file's directory, else /var/lib/tripline.
pub fn state_directory(args: &RunArgs, config: &Config) -> std::path::PathBuf {
    if let Some(d) = &args.state_directory {
        return d.clone();
    }
    match config
        .detect
        .baseline
        .file
        .as_deref()
        .and_then(Path::parent)
    {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        Some(_) => ".".into(),
        None => "/var/lib/tripline".into(),
    }
}

/// The directory exists (or can be created) and a file can be written in it.
fn check_directory_writable(dir: &Path) -> anyhow::Result<()> {
    let fail = |e: std::io::Error| {
        anyhow::Error::new(InputError(format!(
            "state directory {}: {e}: it must be writable by tripline (--state.directory)",
            dir.display()
        )))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".tripline-probe-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// An invalid input that has no richer error type of its own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Exit code for an error chain: bad input files → 3, anything else → 4 (runtime).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use crate::limits::exit;
    for cause in e.chain() {
        if cause.is::<crate::config::ConfigError>()
            || cause.is::<crate::detect::policy::PolicyError>()
            || cause.is::<crate::detect::baseline::BaselineError>()
            || cause.is::<crate::limits::LimitError>()
            || cause.is::<crate::web::WebConfigError>()
            || cause.is::<InputError>()
            || cause.is::<crate::tamper::marker::MarkerError>()
        {
            // A baseline that cannot be written is a runtime problem of the host, not a bad file,
            // but at start it is still the operator's input (a path) that is wrong.
            return exit::BAD_INPUT;
        }
    }
    exit::RUNTIME
}
