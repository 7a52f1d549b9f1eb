//! `completion SHELL`: a shell completion script generated from the clap definitions.

use clap::{Args, CommandFactory};

use crate::cli::Cli;
use crate::exit::Exit;

/// `completion` flags.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for `a.shell`.
pub fn run(a: &CompletionArgs) -> Exit {
    clap_complete::generate(
        a.shell,
        &mut Cli::command(),
        "lifeboat",
        &mut std::io::stdout(),
    );
    Exit::Ok
}
