//! Reading keys from the command line, a file or the environment.

use std::path::PathBuf;

use tag424::crypto::AesKey;

use super::CliError;

/// A key given as hex on the command line, in a file, or in an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct KeySource {
    /// The SDM file read key (the KEY column of keys.csv), 32 hex digits. Prefer --key-file or
    /// the TAG424_KEY environment variable: command lines are visible to other users.
    #[arg(long, value_name = "HEX", env = "TAG424_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Read the SDM file read key from this file (32 hex digits; whitespace ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub key_file: Option<PathBuf>,
}

impl KeySource {
    pub fn resolve(&self, what: &str) -> Result<Option<AesKey>, CliError> {
        read_key(self.key.as_deref(), self.key_file.as_ref(), what)
    }
}

/// The optional SDM meta read key (for `{picc}` templates).
#[derive(Debug, Clone, clap::Args)]
pub struct MetaKeySource {
    /// The SDM meta read key, needed when the template has {picc}.
    #[arg(
        long,
        value_name = "HEX",
        env = "TAG424_META_KEY",
        hide_env_values = true
    )]
    pub meta_key: Option<String>,
    /// Read the SDM meta read key from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "meta_key")]
    pub meta_key_file: Option<PathBuf>,
}

impl MetaKeySource {
    pub fn resolve(&self) -> Result<Option<AesKey>, CliError> {
        read_key(
            self.meta_key.as_deref(),
            self.meta_key_file.as_ref(),
            "meta key",
        )
    }
}

fn read_key(
    hex: Option<&str>,
    file: Option<&PathBuf>,
    what: &str,
) -> Result<Option<AesKey>, CliError> {
    if let Some(path) = file {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            CliError::input(format!(
                "cannot read the {what} file {}: {e}",
                path.display()
            ))
        })?);
        return text
            .parse::<AesKey>()
            .map(Some)
            .map_err(|e| CliError::input(format!("{what} in {}: {e}", path.display())));
    }
    match hex {
        Some(h) => h
            .parse::<AesKey>()
            .map(Some)
            .map_err(|e| CliError::input(format!("{what}: {e}"))),
        None => Ok(None),
    }
}

/// An optional master key: tag keys are then derived with AN10922 instead of drawn at random.
#[derive(Debug, Clone, clap::Args)]
pub struct MasterKeySource {
    /// Derive every tag's five keys from the master key in this file (NXP AN10922 AES-128,
    /// input UID || key number || "tag424"), so they can be re-derived from the UID. The keys
    /// are journaled as always. Also TAG424_MASTER_KEY; never on the command line.
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    #[arg(long, env = "TAG424_MASTER_KEY", hide = true, hide_env_values = true)]
    pub master_key_env: Option<String>,
}

impl MasterKeySource {
    pub fn resolve(&self) -> Result<Option<AesKey>, CliError> {
        read_key(
            self.master_key_env.as_deref(),
            self.master_key_file.as_ref(),
            "master key",
        )
    }
}
