//! `lifeboat`: a thin binary over lifeboat-engine. `main` parses the command line, sets
//! up logging and the runtime, hands the command to its module in `cmd/`, and turns the
//! outcome into an exit code (`exit.rs`).

mod cli;
mod cmd;
mod common;
mod config;
mod confirm;
mod exit;
mod output;
mod report;
mod wait;

use std::process::ExitCode;

use anyhow::Result;

use cli::{Cli, Command, CreateCmd, GetCmd};
use exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::read(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; anything else is a usage error.
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    init_logging(&cli);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return Exit::Error.into();
        }
    };
    match rt.block_on(run(&cli)) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {}", report::render(&e));
            Exit::Error.into()
        }
    }
}

/// Logs on stderr: the server logs its work by default; CLI commands only their warnings.
/// `-v`/`-vv` or `LIFEBOAT_LOG` say more.
fn init_logging(cli: &Cli) {
    let server = matches!(cli.command, Command::Server(_) | Command::NodeAgent(_));
    let filter = match cli.verbose {
        0 if server => "info,kube_runtime=warn",
        0 => "warn",
        1 => "info,lifeboat=info",
        _ => "debug,hyper=info,rustls=info,tower=info,h2=info",
    };
    use tracing_subscriber::prelude::*;
    let shown = tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
        .unwrap_or_else(|_| filter.into());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(shown),
        )
        // Volume backups count what rustic_core skipped, whatever is shown.
        .with(
            matches!(cli.command, Command::Volume(_))
                .then_some(cmd::volume::SkipCounter)
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
        )
        .init();
}

/// Hands the command to its module.
async fn run(cli: &Cli) -> Result<Exit> {
    match &cli.command {
        Command::Backup(cmd) => cmd::backup::run(cli, cmd).await,
        Command::Create(CreateCmd::Backup(c)) => cmd::backup::create(cli, c).await,
        Command::Get(GetCmd::Backups(g)) => cmd::backup::get(cli, g).await,
        Command::Restore(cmd) => cmd::restore::run(cli, cmd).await,
        Command::Create(CreateCmd::Restore(c)) => cmd::restore::create(cli, c).await,
        Command::Get(GetCmd::Restores(g)) => cmd::restore::get(cli, g).await,
        Command::Location(cmd) => cmd::location::run(cli, cmd).await,
        Command::SnapshotLocation(cmd) => cmd::snapshot_location::run(cli, cmd).await,
        Command::Etcd(cmd) => cmd::etcd::run(cli, cmd).await,
        Command::Dr(cmd) => cmd::dr::run(cli, cmd).await,
        Command::Volume(cmd) => cmd::volume::run(cli, cmd).await,
        Command::Apply(a) => cmd::apply::run(cli, a).await,
        Command::Install(a) => cmd::server::install(cli, a).await,
        Command::Uninstall(a) => cmd::server::uninstall(cli, a).await,
        Command::Server(a) => cmd::server::server(cli, a).await,
        Command::NodeAgent(a) => cmd::node_agent::node_agent(cli, a).await,
        Command::RestoreWait(a) => cmd::node_agent::restore_wait(a).await,
        Command::Schedule(cmd) => cmd::schedule::run(cli, cmd).await,
        Command::Audit(a) => cmd::audit::run(cli, a).await,
        Command::Alerts(a) => cmd::alerts::run(a),
        Command::Completion(a) => Ok(cmd::completion::run(a)),
        Command::Version => {
            println!("lifeboat {}", env!("CARGO_PKG_VERSION"));
            Ok(Exit::Ok)
        }
    }
}
