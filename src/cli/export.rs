//! `tag424 export`: a batch folder's keys.csv in clear, for the platform's Keys upload.

use std::io::Write;
use std::path::{Path, PathBuf};

use tag424::provision::journal::{
    Journal, JournalError, ASSOCIATE_CSV, JOURNAL_FILE, KEYS_CSV, KEYS_CSV_AGE,
};
use tag424::provision::lock::lock_folder;

use super::{journal_error, print_json, say, CliError, FORMAT_VERSION};

/// Write a batch folder's keys.csv (XUID,KEY) and associate.csv (XUID,UID) from its journal.
///
/// Every run writes these itself; export writes them again, and is how an encrypted batch
/// (`batch --encrypt-to`, whose run writes keys.csv.age) gets the plain keys.csv the
/// platform's Keys upload takes: it needs the batch's age identity. The plain file holds every
/// key in clear: upload it, then delete it (the next run of an encrypted batch deletes it
/// from the folder; `--to` writes it elsewhere, `--to -` to standard output).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 export --out batch1                                  # a batch with keys in clear
  tag424 export --out batch3 --identity line1.identity        # an encrypted batch
  tag424 export --out batch3 --identity line1.identity --to /media/usb/keys.csv   # to a USB stick")]
pub struct ExportArgs {
    /// The batch folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub identity: super::keys::IdentityArg,
    /// Write the plain keys.csv here instead of DIR/keys.csv (owner-only); `-` prints it.
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,
    /// One JSON object (the files written and how many tags) instead of the text.
    #[arg(long)]
    pub json: bool,
}

pub fn export(a: ExportArgs) -> Result<u8, CliError> {
    let keys = a.identity.access()?;
    if !a.out.join(JOURNAL_FILE).is_file() {
        // A batch folder that lost its journal is said so; anything else is no batch.
        Journal::check_folder(&a.out).map_err(journal_error)?;
        return Err(journal_error(JournalError::NotABatch(a.out.clone())));
    }
    let stdout = a.to.as_deref() == Some(Path::new("-"));
    if stdout && a.json {
        return Err(CliError::input(
            "--to - prints keys.csv itself: leave out --json",
        ));
    }
    // One writer at a time: a run in progress would write newer exports than this one.
    let lock = lock_folder(&a.out).map_err(|e| journal_error(e.into()))?;
    if let Some(mode) = lock.tightened_from() {
        eprintln!("{}", super::tightened_note(&a.out, mode));
    }
    let journal = Journal::read_only_with(&a.out, keys.identity.as_ref()).map_err(journal_error)?;
    if journal.sealed_to().is_some() && keys.identity.is_none() {
        return Err(CliError {
            code: 2,
            message: format!(
                "{} is an encrypted batch: its keys.csv needs the identity that opens them",
                a.out.display()
            ),
            help: Some("add --identity FILE (the age identity file of one of its recipients); `age -d -i FILE keys.csv.age` gives the same CSV".into()),
        });
    }
    let keys_csv = match &a.to {
        Some(p) if !stdout => p.clone(),
        _ => a.out.join(KEYS_CSV),
    };
    // Everything that can fail comes before the keys leave: associate.csv is written first,
    // and "Wrote …" is said only once every file is written.
    let n = if stdout {
        let text = journal.keys_csv().map_err(journal_error)?;
        let n = journal.export_associate().map_err(journal_error)?;
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| CliError::input(format!("standard output: {e}")))?;
        n
    } else {
        journal.export_plain_to(&keys_csv).map_err(journal_error)?
    };
    let associate = a.out.join(ASSOCIATE_CSV);
    if a.json {
        print_json(&serde_json::json!({
            "format": FORMAT_VERSION,
            "tags": n,
            "keys_csv": keys_csv,
            "associate_csv": associate,
            "encrypted": journal.sealed_to().is_some(),
        }));
    } else if stdout {
        eprintln!("Wrote {} ({})", associate.display(), tags(n));
    } else {
        say(&format!(
            "Wrote {} and {} ({})",
            keys_csv.display(),
            associate.display(),
            tags(n)
        ));
        if journal.sealed_to().is_some() {
            say(&format!(
                "{} holds every key in clear: upload it, then delete it ({} stays the batch's record)",
                keys_csv.display(),
                KEYS_CSV_AGE
            ));
        }
    }
    Ok(0)
}

fn tags(n: usize) -> String {
    super::count(n, "tag", "tags")
}
