//! `tag424 export`: a batch folder's keys.csv in clear, for the platform's Keys upload.

use std::path::PathBuf;

use tag424::provision::journal::{Journal, ASSOCIATE_CSV, KEYS_CSV, KEYS_CSV_AGE};

use super::{journal_error, print_json, say, CliError, FORMAT_VERSION};

/// Write a batch folder's keys.csv (XUID,KEY) and associate.csv (XUID,UID) from its journal.
///
/// Every run writes these itself; export writes them again, and is how an encrypted batch
/// (`batch --encrypt-to`, whose run writes keys.csv.age) gets the plain keys.csv the
/// platform's Keys upload takes: it needs the batch's age identity. The plain file holds every
/// key in clear: upload it, then delete it.
///
/// Example: tag424 export --out batch1 --identity ~/keys/line1.age-identity
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The batch folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub identity: super::keys::IdentityArg,
    #[arg(long)]
    pub json: bool,
}

pub fn export(a: ExportArgs) -> Result<u8, CliError> {
    let keys = a.identity.access()?;
    // Read-only: a batch run in progress keeps its lock; the exports are written atomically.
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
    let n = journal.export_plain().map_err(journal_error)?;
    let keys_csv = a.out.join(KEYS_CSV);
    if a.json {
        print_json(&serde_json::json!({
            "format": FORMAT_VERSION,
            "tags": n,
            "keys_csv": keys_csv,
            "associate_csv": a.out.join(ASSOCIATE_CSV),
            "encrypted": journal.sealed_to().is_some(),
        }));
    } else {
        say(&format!(
            "Wrote {} and {} ({n} tags)",
            keys_csv.display(),
            a.out.join(ASSOCIATE_CSV).display()
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
