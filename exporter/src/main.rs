//! Thin entry point: parse the command line, set up logging, run, map errors to exit codes.
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tripline::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tripline::logging::init(cli.run.log_format, &cli.run.log_level);
    let daemon = matches!(
        cli.command,
        None | Some(Command::Run) | Some(Command::Events)
    );

    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            run_async(tripline::pipeline::run(cli.run, false)).map(|()| ExitCode::SUCCESS)
        }
        Command::Events => {
            run_async(tripline::pipeline::run(cli.run, true)).map(|()| ExitCode::SUCCESS)
        }
        Command::CheckConfig(args) if args.schema => {
            println!("{}", tripline::config::schema_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig(_) => tripline::config::Config::from_args(&cli.run, false).map(|_| {
            println!("configuration OK");
            ExitCode::SUCCESS
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
        Command::Gameday(args) => tripline::gameday::run(args),
        Command::GamedayHelper(h) => tripline::gameday::run_helper(h),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if daemon {
                // The daemon's last word goes through the log, in the chosen format.
                tracing::error!(error = %format!("{e:#}"), "tripline stopped with an error");
            } else {
                eprintln!("tripline: error: {e:#}");
            }
            ExitCode::from(2)
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
