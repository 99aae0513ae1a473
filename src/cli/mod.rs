//! Command-line interface: argument parsing (clap), output (text or `--json`) and exit codes.
//! Only this module prints, draws progress or asks questions.

mod keys;
mod verify;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Version of every `--json` document this tool prints.
pub const FORMAT_VERSION: u32 = 1;

/// Provision NXP NTAG 424 DNA tags with SUN URLs and fresh keys, and verify their scans.
///
/// Start with `tag424 demo` to see the whole story on simulated tags.
#[derive(Debug, Parser)]
#[command(
    name = "tag424",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Verify(verify::VerifyArgs),
}

/// An error the operator can act on, with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
    pub help: Option<String>,
}

impl CliError {
    /// Bad input: exit status 2.
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            message: message.into(),
            help: None,
        }
    }
}

/// Prints a line to stdout; a closed pipe is not an error.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// Prints one JSON document on one line.
pub fn print_json<T: serde::Serialize>(value: &T) {
    if let Ok(s) = serde_json::to_string(value) {
        say(&s);
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Verify(a) => verify::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", e.message);
            if let Some(h) = e.help {
                eprintln!("help: {h}");
            }
            ExitCode::from(e.code)
        }
    }
}
