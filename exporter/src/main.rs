//! Thin entry point: parse the command line, set up logging, run, map errors to exit codes.
//!
//! Exit codes (docs/configuration.md): 0 success, 1 `baseline diff` found added keys, 2 usage error,
//! 3 invalid configuration/web configuration/policy/baseline file, 4 runtime failure.
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tripline::cli::{Cli, Command};
use tripline::limits::exit;
use tripline::preflight::{self, OnCorruptBaseline};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print to stdout and succeed; a closed pipe is not an error.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    tripline::logging::init(cli.run.log_format, &cli.run.log_level);
    raise_fd_limit();
    let daemon = matches!(
        cli.command,
        None | Some(Command::Run) | Some(Command::Events)
    );

    match dispatch(cli.command.unwrap_or(Command::Run), cli.run) {
        Ok(code) => code,
        // The reader of our stdout went away (`tripline baseline show F | head`): not a failure.
        Err(e) if tripline::limits::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if daemon {
                // The daemon's last word goes through the log, in the chosen format.
                tracing::error!(error = %format!("{e:#}"), "tripline stopped with an error");
            } else {
                eprintln!("tripline: error: {e:#}");
            }
            ExitCode::from(preflight::exit_code(&e))
        }
    }
}

/// Runs one command.
fn dispatch(command: Command, run: tripline::cli::RunArgs) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run => run_async(tripline::pipeline::run(run, false)).map(|()| ExitCode::SUCCESS),
        Command::Events => {
            run_async(tripline::pipeline::run(run, true)).map(|()| ExitCode::SUCCESS)
        }
        Command::CheckConfig(args) if args.schema => {
            tripline::limits::print_stdout(&format!("{}\n", tripline::config::schema_json()))
                .map(|()| ExitCode::SUCCESS)
                .map_err(Into::into)
        }
        // The same validation `run` does before it loads a probe (preflight::check).
        Command::CheckConfig(args) => preflight::check_with(
            &run,
            false,
            OnCorruptBaseline::Report,
            if args.offline {
                preflight::Host::Other
            } else {
                preflight::Host::This
            },
        )
        .and_then(|c| {
            tripline::limits::print_stdout(&format!(
                "configuration OK ({} rule(s))\n",
                c.policy_rules
            ))?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "tripline", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: None } => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| ExitCode::SUCCESS)
            .map_err(Into::into),
        Command::Man { dir: Some(dir) } => tripline::cli::write_man_pages(&dir).map(|n| {
            eprintln!("wrote {n} man pages to {}", dir.display());
            ExitCode::SUCCESS
        }),
        Command::Baseline(cmd) => tripline::detect::cli::baseline(cmd),
        Command::Policy(cmd) => tripline::detect::cli::policy(cmd),
        Command::Gameday(args) => {
            // An interactive report: when its reader goes away, end quietly like any Unix tool.
            // SAFETY: restoring the default disposition of SIGPIPE before any thread writes.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            tripline::gameday::run(args)
        }
        Command::GamedayHelper(h) => tripline::gameday::run_helper(h),
    }
}

/// Raises the soft open-files limit to the hard one (as Go programs do): each HTTP connection, map and
/// probe costs a descriptor, and `--web.max-connections` defaults to 512.
fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer; setrlimit with a value getrlimit returned.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(fut)
}
