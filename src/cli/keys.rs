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

impl KeySource {
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

/// Reads a key file (wiped on drop): it must be the user's own and closed to others
/// (`tag424::private_fs::check`), as ssh and libpq ask of their secrets.
fn read_file(path: &Path, what: &str) -> Result<Zeroizing<String>, CliError> {
    use tag424::private_fs::{read_secret, PrivateError};
    let bytes = read_secret(path, 4096).map_err(|e| match e {
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
