//! The `tag424` command line. All work is in the library; `cli` parses arguments, draws
//! output and maps errors to exit codes.

#![warn(clippy::unwrap_used)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
