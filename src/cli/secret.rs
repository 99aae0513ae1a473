//! Tokens of `tag424 serve` (the management API's, a folder's API token) from a file or the
//! environment — never from the command line, where every user of the machine sees them in
//! the process list. A token file must be owner-only, the rule libpq applies to its password
//! file ([`tag424::private_fs::others_can_access`]).

use std::path::Path;

use tag424::verifier::query::{valid_token, MAX_TOKEN_LEN};

use super::CliError;

/// Where a token may come from.
pub struct TokenSource<'a> {
    /// The removed command-line flag (`--management-token`).
    pub flag: &'a str,
    /// Its file flag (`--management-token-file`).
    pub file_flag: &'a str,
    /// Its environment variable.
    pub env: &'a str,
}

impl TokenSource<'_> {
    /// The error for the token given on the command line, naming what to use instead.
    pub fn refuse_command_line(&self) -> CliError {
        CliError {
            code: 2,
            message: format!(
                "{} TOKEN is not taken on the command line: every user of the machine sees it in the process list (and shell history)",
                self.flag
            ),
            help: Some(format!(
                "put the token in a file only you can read (chmod 600 FILE) and pass {} FILE, or set {}",
                self.file_flag, self.env
            )),
        }
    }

    /// The token from `removed` (refused), `file`, or the environment; `None` when none.
    pub fn resolve(
        &self,
        removed: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Option<String>, CliError> {
        if removed.is_some() {
            return Err(self.refuse_command_line());
        }
        let (token, from) = match file {
            Some(path) => (
                read_token_file(path, self.file_flag)?,
                path.display().to_string(),
            ),
            // An empty variable counts as unset (as libpq reads an empty PGPASSWORD).
            None => match std::env::var_os(self.env).filter(|v| !v.is_empty()) {
                None => return Ok(None),
                Some(v) => {
                    let v = v.into_string().map_err(|_| {
                        CliError::input(format!(
                            "{} is not text: a token is alphanumeric, 1 to {MAX_TOKEN_LEN} characters",
                            self.env
                        ))
                    })?;
                    (v, self.env.to_string())
                }
            },
        };
        if !valid_token(&token) {
            return Err(CliError::input(format!(
                "the token from {from} is not a token: alphanumeric, 1 to {MAX_TOKEN_LEN} characters (surrounding whitespace and a final newline are ignored in a file)"
            )));
        }
        Ok(Some(token))
    }
}

/// Reads a token file: owner-only, at most 4 KiB, surrounding whitespace ignored.
fn read_token_file(path: &Path, flag: &str) -> Result<String, CliError> {
    use tag424::private_fs::{read_secret, PrivateError};
    // The one rule for secret files given as input (yours, owner-only), as key files have it.
    let bytes = read_secret(path, 4096).map_err(|e| match e {
        PrivateError::NotPrivate(e) => super::not_private(flag, e),
        PrivateError::Io { path, source } => CliError::input(format!(
            "{flag} {}: cannot read it: {source}",
            path.display()
        )),
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::input(format!("{flag} {}: not text", path.display())))?;
    Ok(text.trim().to_string())
}
