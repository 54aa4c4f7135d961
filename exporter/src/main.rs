//! Thin entry point: parse the command line, set up logging, run, map errors to exit codes.
use std::process::ExitCode;

use clap::Parser;
use tripline::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("tripline={}", cli.run.log_level))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            run_async(tripline::pipeline::run(cli.run, false)).map(|()| ExitCode::SUCCESS)
        }
        Command::Events => {
            run_async(tripline::pipeline::run(cli.run, true)).map(|()| ExitCode::SUCCESS)
        }
        Command::CheckConfig => tripline::config::Config::from_args(&cli.run, false).map(|_| {
            println!("configuration OK");
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
            eprintln!("tripline: error: {e:#}");
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
