//! The configuration file: YAML, unknown keys rejected, an embedded default, and `validate()` with
//! errors that say which file, where, what is wrong and what is allowed.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::RunArgs;
use crate::detect::DetectConfig;
use crate::sinks::{EventLevel, SinksConfig};

/// `target = value` when the flag was given.
fn set<T: Clone>(target: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *target = v.clone();
    }
}

/// The configuration used when no `--config.file` is given.
pub const DEFAULT_CONFIG: &str = include_str!("../../docs/examples/tripline.yml");

/// The JSON Schema of the configuration file, generated from these types (`tripline check-config
/// --schema`; shipped as docs/config.schema.json, which a test keeps equal to this).
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(Config);
    schema.insert(
        "description".into(),
        "tripline configuration file (YAML). Every key is optional; unknown keys are errors. \
         Durations are humantime strings such as 100ms, 10m, 1h 30m."
            .into(),
    );
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    ParseNoLocation { path: PathBuf, message: String },
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sensor: SensorConfig,
    pub detect: DetectConfig,
    pub sinks: SinksConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// Kernel ring buffer size in bytes: a power of two, at least one page (4096).
    pub ring_buffer_bytes: u32,
    /// Wake the reader once this many bytes wait in the ring buffer; below that the reader drains every
    /// `poll_interval`. 0 wakes on every event (lowest latency, most context switches). Must be below
    /// ring_buffer_bytes.
    pub wakeup_bytes: u32,
    /// How often the reader drains the ring buffer when the wake-up threshold is not reached.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub poll_interval: std::time::Duration,
    /// Capacity of the queue between the sensor and detection/sinks (events).
    pub pipeline_queue: usize,
    /// Most processes the process tree keeps; beyond it, exited then oldest entries are evicted.
    pub process_tree_max: usize,
    /// procfs mount point, for the process-tree seed at start (`--path.procfs`).
    pub procfs: PathBuf,
    /// File-integrity watch list: absolute paths (a trailing `*` component allowed, e.g. /home/*/.ssh).
    /// Changes under them are reported; everything else costs a counter in the kernel.
    pub file_watch: Vec<String>,
    /// Extra watched directories (the application's), added to `file_watch`.
    pub app_dirs: Vec<String>,
    /// How the syscall probes attach: `dispatch` (one raw `sys_enter`/`sys_exit` pair and a program per
    /// hooked syscall; detaches at once) or `tracepoints` (a `syscalls:sys_*` tracepoint per hooked
    /// syscall; costs nothing on unhooked syscalls, ~33 ms per tracepoint to detach).
    pub syscall_hooks: SyscallHooks,
}

pub use crate::probes::SyscallHooks;

impl SensorConfig {
    pub fn watch_list(&self) -> Vec<String> {
        self.file_watch
            .iter()
            .chain(&self.app_dirs)
            .cloned()
            .collect()
    }
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            ring_buffer_bytes: 8 << 20,
            wakeup_bytes: 256 << 10,
            poll_interval: std::time::Duration::from_millis(100),
            pipeline_queue: 16384,
            process_tree_max: 65536,
            procfs: PathBuf::from("/proc"),
            file_watch: crate::enrich::filewatch::DEFAULT_WATCH
                .iter()
                .map(|s| s.to_string())
                .collect(),
            app_dirs: Vec::new(),
            syscall_hooks: SyscallHooks::default(),
        }
    }
}

impl Config {
    /// The configuration `run` uses: the file (or the embedded default), command-line overrides applied,
    /// validated. `check-config` calls exactly this.
    pub fn from_args(args: &RunArgs, events_to_stdout: bool) -> anyhow::Result<Config> {
        let mut config = Config::load(args.config_file.as_deref())?;
        config.apply_overrides(args, events_to_stdout);
        let origin = args
            .config_file
            .clone()
            .unwrap_or_else(|| "<command line>".into());
        config.validate(&origin)?;
        Ok(config)
    }

    /// Command-line flags override the file.
    fn apply_overrides(&mut self, args: &RunArgs, events_to_stdout: bool) {
        let (sensor, detect, sinks) = (&mut self.sensor, &mut self.detect, &mut self.sinks);
        if let Some(rb) = args.ring_buffer_bytes {
            sensor.ring_buffer_bytes = rb;
            // Keep the wake-up threshold meaningful for a smaller ring.
            sensor.wakeup_bytes = sensor.wakeup_bytes.min(rb / 4);
        }
        set(&mut sensor.procfs, &args.procfs);
        if let Some(out) = &args.events_output {
            sinks.jsonl.path = Some(out.clone());
        }
        set(&mut sinks.jsonl.events, &args.events_level);
        if let Some(e) = &args.otlp_endpoint {
            sinks.otlp.endpoint = Some(e.clone());
        }
        if let Some(p) = args.otlp_protocol {
            sinks.otlp.protocol = Some(p);
        }
        set(&mut sinks.otlp.events, &args.otlp_events);
        if let Some(p) = &args.policy_file {
            detect.policy_file = Some(p.clone());
        }
        if let Some(f) = &args.baseline_file {
            detect.baseline.file = Some(f.clone());
        }
        set(&mut detect.baseline.mode, &args.baseline_mode);
        set(&mut detect.baseline.learn_for, &args.baseline_learn_for);
        set(
            &mut detect.baseline.quiet_period,
            &args.baseline_quiet_period,
        );
        if events_to_stdout {
            sinks.jsonl.path = Some("-".into());
            sinks.jsonl.events = args.events_level.unwrap_or(EventLevel::All);
        }
    }

    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Config::parse(DEFAULT_CONFIG, Path::new("<embedded default>")),
            Some(p) => {
                let text = crate::limits::read_bounded(
                    p,
                    crate::limits::MAX_CONFIG_BYTES,
                    "configuration",
                )?;
                Config::parse(&text, p)
            }
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        crate::limits::check_nesting(
            text,
            &path.display().to_string(),
            crate::limits::MAX_NESTING,
        )?;
        let cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| yaml_error(path, &e))?
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let rb = self.sensor.ring_buffer_bytes;
        if rb < 4096 || !rb.is_power_of_two() {
            return Err(invalid(
                "sensor.ring_buffer_bytes",
                format!(
                    "{rb} is not allowed: must be a power of two of at least 4096 (e.g. 8388608)"
                ),
            ));
        }
        if self.sensor.wakeup_bytes >= rb {
            return Err(invalid(
                "sensor.wakeup_bytes",
                format!(
                    "{} is not allowed: must be below sensor.ring_buffer_bytes ({rb})",
                    self.sensor.wakeup_bytes
                ),
            ));
        }
        let pi = self.sensor.poll_interval;
        if pi < std::time::Duration::from_millis(1) || pi > std::time::Duration::from_secs(5) {
            return Err(invalid(
                "sensor.poll_interval",
                format!("{pi:?} is not allowed: must be between 1ms and 5s (e.g. 100ms)"),
            ));
        }
        if self.sensor.pipeline_queue == 0 || self.sensor.pipeline_queue > 1 << 22 {
            return Err(invalid(
                "sensor.pipeline_queue",
                format!(
                    "{} is not allowed: must be between 1 and 4194304",
                    self.sensor.pipeline_queue
                ),
            ));
        }
        if self.sensor.process_tree_max < 64 {
            return Err(invalid(
                "sensor.process_tree_max",
                format!(
                    "{} is not allowed: must be at least 64",
                    self.sensor.process_tree_max
                ),
            ));
        }
        self.detect
            .validate()
            .map_err(|(field, message)| invalid(&field, message))?;
        self.sinks
            .validate()
            .map_err(|(field, message)| invalid(&field, message))?;
        Ok(())
    }
}

/// Turns a YAML error into file:line:column and the parser's message (which lists allowed keys for
/// unknown fields and allowed values for enums).
pub fn yaml_error(path: &Path, e: &serde_yaml_ng::Error) -> ConfigError {
    match e.location() {
        Some(loc) => ConfigError::Parse {
            path: path.to_path_buf(),
            line: loc.line(),
            column: loc.column(),
            message: strip_location(&e.to_string()),
        },
        None => ConfigError::ParseNoLocation {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod schema_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        Config::load(None).expect("embedded default config must load");
    }

    #[test]
    fn unknown_key_reports_line_and_allowed_keys() {
        let err =
            Config::parse("sensor:\n  ring_bufer_bytes: 4096\n", Path::new("t.yml")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("t.yml:2:3: sensor: unknown field `ring_bufer_bytes`"),
            "{msg}"
        );
        assert!(
            msg.contains("ring_buffer_bytes"),
            "must list allowed keys: {msg}"
        );
    }

    #[test]
    fn bad_ring_buffer_size_is_rejected() {
        let err =
            Config::parse("sensor:\n  ring_buffer_bytes: 5000\n", Path::new("t.yml")).unwrap_err();
        assert!(
            err.to_string()
                .contains("sensor.ring_buffer_bytes: 5000 is not allowed"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_is_rejected_with_location() {
        let err =
            Config::parse("sensor:\n  pipeline_queue: lots\n", Path::new("t.yml")).unwrap_err();
        assert!(err.to_string().starts_with("t.yml:2:"), "{err}");
    }
}
