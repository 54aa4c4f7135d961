//! `tripline baseline …` and `tripline policy …`: offline tools for CI gates and reviews.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::baseline::{self, Baseline, Model};
use super::policy::Policy;

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Print a baseline file: provenance and every key by model and state.
    Show { file: PathBuf },
    /// Keys NEW has that OLD lacks (+) and the reverse (-). Exits 1 when NEW adds keys (a CI gate).
    Diff { old: PathBuf, new: PathBuf },
    /// Merge baselines from files or peers (`http://host:9799/api/v1/baseline`) into one fleet model.
    Merge {
        /// Files or http:// URLs.
        #[arg(required = true)]
        sources: Vec<String>,
        /// Output file (written atomically).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Record this version (e.g. the git tag or commit of the reviewed model) in the
        /// provenance; hosts running the file report it as `tripline_baseline_info{version}`.
        #[arg(long = "set-version")]
        set_version: Option<String>,
    },
    /// Accept keys seen in monitor mode as normal (all, or one model / one key).
    Accept {
        file: PathBuf,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file: reports file:line:column, what is wrong and what is allowed.
    Check { file: PathBuf },
    /// Print the embedded default policy.
    Default,
}

// One arm per subcommand, each a few lines: a flat match reads better than a function per arm.
pub fn baseline(cmd: BaselineCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BaselineCommand::Show { file } => {
            let b = Baseline::read(&file)?;
            let mut out = String::new();
            let p = &b.provenance;
            let _ = writeln!(out, "baseline {} (schema {})", file.display(), b.schema);
            let _ = writeln!(
                out,
                "  version: {}  host: {}  tripline: {}  learned: {} .. {}",
                p.version.as_deref().unwrap_or("-"),
                p.host,
                p.tripline_version,
                p.learned_from.as_deref().unwrap_or("-"),
                p.learned_until.as_deref().unwrap_or("-")
            );
            if !p.sources.is_empty() {
                let _ = writeln!(out, "  merged from: {}", p.sources.join(", "));
            }
            for (m, keys) in &b.models {
                let _ = writeln!(
                    out,
                    "{}: {} learned, {} seen in monitor, {} accepted",
                    m.as_str(),
                    keys.learned.len(),
                    keys.seen_in_monitor.len(),
                    keys.accepted.len()
                );
                for (state, set) in [
                    ("learned", &keys.learned),
                    ("seen_in_monitor", &keys.seen_in_monitor),
                    ("accepted", &keys.accepted),
                ] {
                    for k in set {
                        let _ = writeln!(out, "  [{state}] {k}");
                    }
                }
            }
            crate::limits::print_stdout(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        BaselineCommand::Diff { old, new } => {
            let (old_b, new_b) = (Baseline::read(&old)?, Baseline::read(&new)?);
            let d = Baseline::diff(&old_b, &new_b);
            let mut out = String::new();
            for (m, sign, key) in &d {
                let side = if *sign == '+' { &new_b } else { &old_b };
                let state = side.state_of(*m, key).unwrap_or("unknown");
                let _ = writeln!(out, "{sign} {}: {key} ({state})", m.as_str());
            }
            crate::limits::print_stdout(&out)?;
            let added = d.iter().filter(|(_, s, _)| *s == '+').count();
            eprintln!("{added} key(s) added, {} removed", d.len() - added);
            Ok(if added > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        BaselineCommand::Merge {
            sources,
            output,
            set_version,
        } => {
            let mut parts = Vec::new();
            for s in sources {
                let b = if s.starts_with("http://") {
                    baseline::fetch(&s)?
                } else {
                    Baseline::read(&PathBuf::from(&s))?
                };
                parts.push((s, b));
            }
            let mut merged = Baseline::merge(&parts);
            if let Some(v) = set_version {
                merged.provenance.version = Some(v);
            }
            merged.save(&output)?;
            let keys: usize = merged.models.values().map(|k| k.len()).sum();
            eprintln!(
                "merged {} baseline(s) into {} ({keys} keys)",
                parts.len(),
                output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        BaselineCommand::Accept { file, model, key } => {
            let model = match model {
                None => None,
                Some(m) => Some(Model::parse(&m).ok_or_else(|| {
                    let allowed: Vec<&str> = Model::ALL.iter().map(|m| m.as_str()).collect();
                    anyhow::anyhow!(
                        "--model {m:?} is not a model; allowed: {}",
                        allowed.join(", ")
                    )
                })?),
            };
            let mut b = Baseline::read(&file)?;
            let n = b.accept(model, key.as_deref());
            b.save(&file)?;
            eprintln!("accepted {n} key(s) in {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn policy(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { file } => {
            let p = Policy::load(Some(&file))?;
            crate::limits::print_stdout(&format!(
                "{}: policy {:?} OK, {} rule(s)\n",
                file.display(),
                p.name,
                p.rules.len()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Default => {
            crate::limits::print_stdout(super::policy::DEFAULT_POLICY)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
