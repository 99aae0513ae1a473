//! Reading keys from a file, the environment or a prompt without echo — never from the command
//! line, where every user of the machine sees them in the process list.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use tag424::crypto::AesKey;
use zeroize::Zeroizing;

use super::CliError;

/// The error for a removed key-on-the-command-line flag, naming what to use instead.
fn removed(flag: &str, file_flag: &str, env: &str) -> CliError {
    CliError {
        code: 2,
        message: format!(
            "{flag} HEX was removed: a key on the command line is visible to every user of the machine (process list, shell history)"
        ),
        help: Some(format!(
            "put the key in a file and pass {file_flag} FILE, or set {env}, or leave both out and type it at the prompt"
        )),
    }
}

/// The SDM file read key: `--key-file`, `TAG424_KEY`, or a prompt.
#[derive(Debug, Clone, clap::Args)]
pub struct KeySource {
    /// Read the SDM file read key (the KEY column of keys.csv, 32 hex digits; whitespace
    /// ignored) from FILE. Also TAG424_KEY; without either, tag424 asks for it (no echo).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Removed: keys are never taken on the command line.
    #[arg(long = "key", value_name = "HEX", hide = true)]
    pub removed_key: Option<String>,
}

/// Largest keys.csv `--key-file` reads (about 300,000 tags).
const MAX_KEYS_CSV: u64 = 16 << 20;

/// Where a key came from, for the report.
pub enum KeyFrom {
    /// A key file, `TAG424_KEY` or the prompt.
    Single,
    /// The row of a batch's keys.csv: its tag code and line.
    KeysCsv {
        /// The tag code the row was picked by.
        xuid: String,
        /// Its line in the file.
        line: usize,
    },
}

impl KeySource {
    /// The key for the tag whose code `xuid` gives: `--key-file` may be a single key or a
    /// batch's keys.csv (`XUID,KEY` rows), whose row is picked by the tag code; `xuid`
    /// is asked only then, and its error (no tag code in the URL) returned as is.
    pub fn resolve_for(
        &self,
        xuid: impl FnOnce() -> Result<String, CliError>,
    ) -> Result<Option<(AesKey, KeyFrom)>, CliError> {
        if self.removed_key.is_some() {
            return Err(removed("--key", "--key-file", "TAG424_KEY"));
        }
        if let Some(path) = &self.key_file {
            let text = read_file_upto(path, "SDM file read key", MAX_KEYS_CSV)?;
            if text.contains(',') {
                let code = xuid()?;
                let (key, line) = key_of(&text, &code, path)?;
                return Ok(Some((key, KeyFrom::KeysCsv { xuid: code, line })));
            }
        }
        Ok(self.resolve()?.map(|k| (k, KeyFrom::Single)))
    }

    /// The key; a terminal is asked when neither the file nor the environment has it.
    pub fn resolve(&self) -> Result<Option<AesKey>, CliError> {
        if self.removed_key.is_some() {
            return Err(removed("--key", "--key-file", "TAG424_KEY"));
        }
        read_key(
            self.key_file.as_deref(),
            "TAG424_KEY",
            "SDM file read key",
            true,
        )
    }
}

/// The optional SDM meta read key (for `{picc}` templates).
#[derive(Debug, Clone, clap::Args)]
pub struct MetaKeySource {
    /// Read the SDM meta read key (needed when the template has {picc}) from FILE. Also
    /// TAG424_META_KEY.
    #[arg(long, value_name = "FILE")]
    pub meta_key_file: Option<PathBuf>,
    /// Removed: keys are never taken on the command line.
    #[arg(long = "meta-key", value_name = "HEX", hide = true)]
    pub removed_meta_key: Option<String>,
}

impl MetaKeySource {
    /// The error for the removed `--meta-key HEX`, before any other key is read.
    pub fn refuse_removed(&self) -> Result<(), CliError> {
        match self.removed_meta_key {
            Some(_) => Err(removed("--meta-key", "--meta-key-file", "TAG424_META_KEY")),
            None => Ok(()),
        }
    }

    /// `prompt`: ask a terminal when the key is needed and not given.
    pub fn resolve(&self, prompt: bool) -> Result<Option<AesKey>, CliError> {
        self.refuse_removed()?;
        read_key(
            self.meta_key_file.as_deref(),
            "TAG424_META_KEY",
            "SDM meta read key",
            prompt,
        )
    }
}

/// The key of `code`'s row in keys.csv `text` (header with XUID and KEY, one row per tag),
/// and its line. Cells are read in place (no copies of other rows' keys); errors name the
/// file and line, never a cell.
fn key_of(text: &str, code: &str, path: &Path) -> Result<(AesKey, usize), CliError> {
    let file = path.display();
    let cells = |l: &str| -> Vec<String> {
        l.split(',')
            .map(|c| c.trim().trim_matches('"').to_ascii_uppercase())
            .collect()
    };
    let mut lines = text
        .trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, head)) = lines.next() else {
        return Err(CliError::input(format!("{file} is empty")));
    };
    let head = cells(head);
    let col = |name: &str| head.iter().position(|h| h == name);
    let (Some(xc), Some(kc)) = (col("XUID"), col("KEY")) else {
        return Err(CliError {
            code: 2,
            message: format!(
                "{file} line 1: expected a keys.csv header with XUID and KEY columns (a batch's keys.csv), or a file holding one key (32 hex digits)"
            ),
            help: Some("pass the batch's keys.csv, or the tag's own key in a file of its own".into()),
        });
    };
    let mut found = None;
    for (i, l) in lines {
        let row: Vec<&str> = l.split(',').map(|c| c.trim().trim_matches('"')).collect();
        if row.get(xc) != Some(&code) {
            continue;
        }
        if found.is_some() {
            return Err(CliError::input(format!(
                "{file} line {}: tag code {code} has a second row",
                i + 1
            )));
        }
        let key = row
            .get(kc)
            .ok_or_else(|| CliError::input(format!("{file} line {}: no KEY cell", i + 1)))?
            .parse::<AesKey>()
            .map_err(|e| CliError::input(format!("{file} line {}: KEY: {e}", i + 1)))?;
        found = Some((key, i + 1));
    }
    found.ok_or_else(|| CliError {
        code: 2,
        message: format!("{file} has no row for tag code {code}"),
        help: Some(
            "pass the keys.csv of the batch this tag was encoded in (tag424 export writes it)"
                .into(),
        ),
    })
}

/// Reads a key file (wiped on drop): it must be the user's own and closed to others
/// (`tag424::private_fs::check`), as ssh and libpq ask of their secrets.
fn read_file(path: &Path, what: &str) -> Result<Zeroizing<String>, CliError> {
    read_file_upto(path, what, 4096)
}

/// [`read_file`] with another size limit (a batch's keys.csv).
fn read_file_upto(path: &Path, what: &str, max: u64) -> Result<Zeroizing<String>, CliError> {
    use tag424::private_fs::{read_secret, PrivateError};
    let bytes = read_secret(path, max).map_err(|e| match e {
        PrivateError::NotPrivate(e) => super::not_private(&format!("the {what} file"), e),
        PrivateError::Io { path, source } => CliError::input(format!(
            "cannot read the {what} file {}: {source}",
            path.display()
        )),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        CliError::input(format!(
            "the {what} file {} is not text: a key file holds 32 hex digits",
            path.display()
        ))
    })?;
    Ok(Zeroizing::new(text.to_string()))
}

fn read_key(
    file: Option<&Path>,
    env: &str,
    what: &str,
    prompt: bool,
) -> Result<Option<AesKey>, CliError> {
    let (text, from) = if let Some(path) = file {
        (read_file(path, what)?, path.display().to_string())
    } else if let Some(v) = std::env::var_os(env) {
        let v =
            Zeroizing::new(v.into_string().map_err(|_| {
                CliError::input(format!("{env} is not text: a key is 32 hex digits"))
            })?);
        (v, env.to_string())
    } else if prompt && std::io::stdin().is_terminal() {
        let typed = rpassword::prompt_password(format!("{what} (32 hex digits, not shown): "))
            .map_err(|e| CliError::input(format!("cannot read the {what}: {e}")))?;
        (Zeroizing::new(typed), "the prompt".to_string())
    } else {
        return Ok(None);
    };
    text.parse::<AesKey>()
        .map(Some)
        .map_err(|e| CliError::input(format!("{what} from {from}: {e}")))
}

/// An optional master key: tag keys are then derived with AN10922 instead of drawn at random.
#[derive(Debug, Clone, clap::Args)]
pub struct MasterKeySource {
    /// Derive every tag's five keys from the master key in this file (NXP AN10922 AES-128,
    /// input UID || key number || "tag424"), so they can be re-derived from the UID. The keys
    /// are journaled as always. Also TAG424_MASTER_KEY; never on the command line.
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Removed: keys are never taken on the command line.
    #[arg(long = "master-key", value_name = "HEX", hide = true)]
    pub removed_master_key: Option<String>,
    /// Removed (it put the key on the command line).
    #[arg(long = "master-key-env", value_name = "HEX", hide = true)]
    pub removed_master_key_env: Option<String>,
}

impl MasterKeySource {
    pub fn resolve(&self) -> Result<Option<AesKey>, CliError> {
        if self.removed_master_key.is_some() {
            return Err(removed(
                "--master-key",
                "--master-key-file",
                "TAG424_MASTER_KEY",
            ));
        }
        if self.removed_master_key_env.is_some() {
            return Err(removed(
                "--master-key-env",
                "--master-key-file",
                "TAG424_MASTER_KEY",
            ));
        }
        read_key(
            self.master_key_file.as_deref(),
            "TAG424_MASTER_KEY",
            "master key",
            false,
        )
    }
}

/// Keys encrypted at rest: `--encrypt-to` for a new batch, `--identity` to open one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AtRest {
    /// Encrypt this batch's keys at rest to an age recipient (age1…, from `age-keygen`), or to
    /// every recipient in a file (one per line, as `age -R` reads): the journal's keys and the
    /// export (keys.csv.age, no keys.csv) are sealed, so the folder and its backups leak no
    /// key. Repeatable (any one recipient opens them). The folder remembers its recipients;
    /// a folder that already holds keys in clear is refused.
    #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// The age identity file (AGE-SECRET-KEY-1…) that opens an encrypted batch's keys: needed
    /// to resume it (interrupted tags, the full keys.csv.age), to reset its tags, to serve it
    /// and to export its plain keys.csv. Not needed to start a new encrypted batch.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

impl AtRest {
    /// The journal's key access: parsed recipients and the loaded identity.
    pub fn access(&self) -> Result<tag424::provision::journal::KeyAccess, CliError> {
        use tag424::provision::sealed::{Identity, Recipients};
        let sealed = |e: tag424::provision::sealed::SealError| {
            match e {
            tag424::provision::sealed::SealError::NotPrivate(e) => {
                super::not_private("--identity", e)
            }
            e => CliError {
            code: 2,
            message: e.to_string(),
            help: Some("make a key pair with `age-keygen -o key.txt`; its recipient (age1…) goes to --encrypt-to, the file itself to --identity, kept off this machine".into()),
            },
        }
        };
        Ok(tag424::provision::journal::KeyAccess {
            encrypt_to: if self.encrypt_to.is_empty() {
                None
            } else {
                Some(Recipients::parse(&self.encrypt_to).map_err(sealed)?)
            },
            identity: self
                .identity
                .as_deref()
                .map(Identity::load)
                .transpose()
                .map_err(sealed)?,
        })
    }
}

/// Only `--identity` (commands that read an encrypted batch but never start one).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IdentityArg {
    /// The age identity file (AGE-SECRET-KEY-1…) that opens an encrypted batch's keys
    /// (a batch made with --encrypt-to).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

impl IdentityArg {
    /// The journal's key access (no new recipients).
    pub fn access(&self) -> Result<tag424::provision::journal::KeyAccess, CliError> {
        AtRest {
            encrypt_to: Vec::new(),
            identity: self.identity.clone(),
        }
        .access()
    }
}
