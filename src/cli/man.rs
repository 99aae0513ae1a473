//! `tag424 man --out DIR`: one man page per command, generated from the clap definitions (the
//! same source as `--help` and the completions, so they cannot disagree).

use std::path::{Path, PathBuf};

use super::{say, CliError};

/// Write a man page per command (tag424.1, tag424-batch.1, …) into DIR.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 man --out ~/.local/share/man/man1            # then: man tag424-batch
  sudo tag424 man --out /usr/local/share/man/man1      # for every user")]
pub struct ManArgs {
    /// The folder for the pages (created if missing; existing pages are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: ManArgs, cmd: clap::Command) -> Result<u8, CliError> {
    let fail = |e: std::io::Error| CliError {
        code: 2,
        message: format!("cannot write man pages to {}: {e}", args.out.display()),
        help: Some("give --out a folder you can write to".into()),
    };
    std::fs::create_dir_all(&args.out).map_err(fail)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(cmd, &args.out, &mut written).map_err(fail)?;
    say(&format!(
        "Wrote {} to {}",
        super::count(written.len(), "man page", "man pages"),
        args.out.display()
    ));
    Ok(0)
}

/// A page for `cmd` and, depth first, for each of its visible subcommands.
fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_pages(sub, dir, written)?;
    }
    written.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
    Ok(())
}
