//! Keys at rest: key material encrypted to age X25519 recipients (`--encrypt-to`), so a stolen
//! laptop or backup of a batch folder leaks no key. Only the holder of a matching identity
//! (`--identity FILE`, the `AGE-SECRET-KEY-1…` file `age-keygen` writes) can read them back.
//!
//! The format is the age file format (age-encryption.org/v1), binary, as the `age` tool reads
//! and writes it: `age -d -i identity keys.csv.age` decrypts an export. In the journal, a
//! record's key material is one age file, base64 in the record's JSON line.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use zeroize::Zeroizing;

/// Why keys could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// An `--encrypt-to` that is neither a recipient nor a readable file of them.
    #[error("--encrypt-to {given:?} is not an age recipient (age1…) nor a readable recipients file: {why}")]
    Recipient {
        /// What was given.
        given: String,
        /// Why it was not taken.
        #[source]
        why: RecipientProblem,
    },
    /// A recipients file without a recipient.
    #[error("no recipient in {0}: a recipients file holds age1… lines (comments with #)")]
    EmptyRecipients(String),
    /// The identity file cannot be read or parsed.
    #[error("cannot read the identity file {path}: {why}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        why: IdentityProblem,
    },
    /// The identity file belongs to another user or others can read it.
    #[error("the identity file: {0}")]
    NotPrivate(#[from] crate::private_fs::NotPrivate),
    /// The identity file parses but holds no identity.
    #[error("the identity file {0} holds no age identity (AGE-SECRET-KEY-1…)")]
    NoIdentity(PathBuf),
    /// The identity is not one of the recipients the keys were sealed to.
    #[error("no identity in {identity} opens these keys: they were encrypted to other recipients")]
    WrongIdentity {
        /// The identity file.
        identity: String,
    },
    /// Sealed keys that do not open (truncated, altered, not an age file).
    #[error("encrypted keys are damaged: {0}")]
    Damaged(#[source] Damage),
    /// The age library could not seal.
    #[error("encrypting the keys failed: {0}")]
    Encrypt(#[source] SealFailure),
}

/// Why an `--encrypt-to` was not taken ([`SealError::Recipient`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecipientProblem {
    /// Not `age1…`, and no file of that name can be read.
    #[error(transparent)]
    Unreadable(std::io::Error),
    /// The file is an identity (a secret key), not recipients.
    #[error("it is an identity file (a secret key): --encrypt-to takes its recipient, `age-keygen -y {file}`, and the identity stays off the station")]
    IdentityFile {
        /// The file given.
        file: String,
    },
    /// A plugin recipient (`age1yubikey1…`): only X25519 ones are taken.
    #[error("a plugin recipient (age-plugin-{plugin}): only X25519 recipients (from age-keygen) are taken")]
    Plugin {
        /// The plugin's name.
        plugin: String,
    },
    /// age does not read it as an X25519 recipient (age's words).
    #[error("{0}")]
    NotX25519(&'static str),
}

/// Why an identity file cannot be used ([`SealError::Identity`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityProblem {
    /// The file cannot be read.
    #[error(transparent)]
    Unreadable(std::io::Error),
    /// The file is something else that can be told (an encrypted file, a plugin identity,
    /// recipients), with what to do instead.
    #[error("{0}")]
    NotAnIdentity(&'static str),
    /// age does not read the file as identities.
    #[error(transparent)]
    Parse(std::io::Error),
    /// age read the file but cannot use its identities.
    #[error(transparent)]
    Unusable(Box<age::DecryptError>),
}

/// Why sealed keys do not open ([`SealError::Damaged`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// The JSON field is not base64.
    #[error(transparent)]
    Base64(#[from] base64::DecodeError),
    /// age refused the file (not an age file, a header or payload that does not check).
    #[error(transparent)]
    Age(Box<age::DecryptError>),
    /// The payload ended or failed while being read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// A tag's sealed keys open to something else than its five keys (serde's message is not
    /// kept: it could quote the opened text).
    #[error("the keys sealed for tag {uid} open to something that is not five keys")]
    NotFiveKeys {
        /// The tag's UID.
        uid: String,
    },
}

// age's errors are large; boxed, a journal error stays small.
impl From<age::DecryptError> for Damage {
    fn from(e: age::DecryptError) -> Damage {
        Damage::Age(Box::new(e))
    }
}

impl From<age::EncryptError> for SealFailure {
    fn from(e: age::EncryptError) -> SealFailure {
        SealFailure::Age(Box::new(e))
    }
}

/// Why sealing failed ([`SealError::Encrypt`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealFailure {
    /// age refused the recipients.
    #[error(transparent)]
    Age(Box<age::EncryptError>),
    /// Writing the sealed stream failed.
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

/// The recipients keys are sealed to (`--encrypt-to`, repeatable).
#[derive(Clone)]
pub struct Recipients {
    list: Vec<age::x25519::Recipient>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|r| r.to_string()))
            .finish()
    }
}

impl Recipients {
    /// Each spec is an `age1…` recipient or a file of them (one per line, `#` comments), as
    /// `age -r` and `age -R` take them.
    pub fn parse(specs: &[String]) -> Result<Recipients, SealError> {
        let mut list = Vec::new();
        for spec in specs {
            let spec = spec.trim();
            if spec.starts_with("age1") {
                list.push(parse_recipient(spec, spec)?);
                continue;
            }
            // Read whole into wiped memory: an identity file given by mistake holds a secret.
            let text = Zeroizing::new(std::fs::read_to_string(spec).map_err(|e| {
                SealError::Recipient {
                    given: spec.to_string(),
                    why: RecipientProblem::Unreadable(e),
                }
            })?);
            if text.contains("AGE-SECRET-KEY-") {
                return Err(SealError::Recipient {
                    given: spec.to_string(),
                    why: RecipientProblem::IdentityFile {
                        file: spec.to_string(),
                    },
                });
            }
            let before = list.len();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                list.push(parse_recipient(spec, line)?);
            }
            if list.len() == before {
                return Err(SealError::EmptyRecipients(spec.to_string()));
            }
        }
        Ok(Recipients { list })
    }

    /// The recipients as `age1…` strings.
    pub fn to_strings(&self) -> Vec<String> {
        self.list.iter().map(|r| r.to_string()).collect()
    }

    /// One age file holding `plain`, openable by any of the recipients.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let enc =
            age::Encryptor::with_recipients(self.list.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| SealError::Encrypt(e.into()))?;
        let mut out = Vec::with_capacity(plain.len() + 256);
        let mut w = enc
            .wrap_output(&mut out)
            .map_err(|e| SealError::Encrypt(e.into()))?;
        std::io::Write::write_all(&mut w, plain).map_err(|e| SealError::Encrypt(e.into()))?;
        w.finish().map_err(|e| SealError::Encrypt(e.into()))?;
        Ok(out)
    }

    /// [`Recipients::seal`] as base64 text, for a JSON field.
    pub fn seal_base64(&self, plain: &[u8]) -> Result<String, SealError> {
        Ok(base64::engine::general_purpose::STANDARD.encode(self.seal(plain)?))
    }
}

fn parse_recipient(given: &str, text: &str) -> Result<age::x25519::Recipient, SealError> {
    age::x25519::Recipient::from_str(text).map_err(|e| SealError::Recipient {
        given: given.to_string(),
        // `age1` + a plugin name + `1`: a plugin recipient (age1yubikey1…), not X25519.
        why: match text.strip_prefix("age1").and_then(|r| r.split_once('1')) {
            Some((plugin, _)) if !plugin.is_empty() && text.len() != 62 => {
                RecipientProblem::Plugin {
                    plugin: plugin.to_string(),
                }
            }
            _ => RecipientProblem::NotX25519(e),
        },
    })
}

/// What an identity file that does not parse is instead, if that can be told.
fn not_an_identity(text: &[u8]) -> Option<&'static str> {
    let has = |needle: &str| text.windows(needle.len()).any(|w| w == needle.as_bytes());
    if has("-----BEGIN AGE ENCRYPTED FILE-----") || text.starts_with(b"age-encryption.org/") {
        Some("it is passphrase-protected (an age-encrypted file): decrypt it to a private place first (`age -d FILE`), or use an unprotected identity")
    } else if has("AGE-PLUGIN-") {
        Some("it is a plugin identity (AGE-PLUGIN-…): only X25519 identities (from age-keygen) are taken")
    } else if has("age1") && !has("AGE-SECRET-KEY-") {
        Some("it holds recipients (age1…), not an identity: --identity takes the file age-keygen wrote (AGE-SECRET-KEY-1…)")
    } else {
        None
    }
}

/// The identities that open sealed keys (`--identity FILE`).
pub struct Identity {
    path: PathBuf,
    ids: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.path.display())
    }
}

impl Identity {
    /// Reads an age identity file (as `age-keygen -o FILE` writes it).
    pub fn load(path: &Path) -> Result<Identity, SealError> {
        let err = |why: IdentityProblem| SealError::Identity {
            path: path.to_path_buf(),
            why,
        };
        // The identity opens every key of a batch: it must be the user's own and closed to
        // others, as every key file is.
        let text = crate::private_fs::read_secret(path, 1 << 20).map_err(|e| match e {
            crate::private_fs::PrivateError::NotPrivate(e) => SealError::NotPrivate(e),
            crate::private_fs::PrivateError::Io { source, .. } => {
                err(IdentityProblem::Unreadable(source))
            }
        })?;
        let file = age::IdentityFile::from_buffer(&text[..]).map_err(|e| {
            err(not_an_identity(&text)
                .map(IdentityProblem::NotAnIdentity)
                .unwrap_or(IdentityProblem::Parse(e)))
        })?;
        let ids = file
            .into_identities()
            .map_err(|e| err(IdentityProblem::Unusable(Box::new(e))))?;
        if ids.is_empty() {
            return Err(SealError::NoIdentity(path.to_path_buf()));
        }
        Ok(Identity {
            path: path.to_path_buf(),
            ids,
        })
    }

    /// The plain bytes of one age file.
    pub fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let d = age::Decryptor::new_buffered(sealed).map_err(|e| SealError::Damaged(e.into()))?;
        let mut r = d
            .decrypt(self.ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => SealError::WrongIdentity {
                    identity: self.path.display().to_string(),
                },
                e => SealError::Damaged(e.into()),
            })?;
        let mut out = Zeroizing::new(Vec::with_capacity(sealed.len()));
        std::io::Read::read_to_end(&mut r, &mut out).map_err(|e| SealError::Damaged(e.into()))?;
        Ok(out)
    }

    /// [`Identity::open`] of base64 text from a JSON field.
    pub fn open_base64(&self, text: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| SealError::Damaged(e.into()))?;
        self.open(&sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn pair() -> (String, String) {
        let id = age::x25519::Identity::generate();
        (
            id.to_public().to_string(),
            id.to_string().expose_secret().to_string(),
        )
    }

    #[test]
    fn the_wrong_kind_of_file_or_recipient_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (r, i) = pair();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            // Owner-only, as an identity file must be.
            crate::private_fs::write_atomic(&p, text.as_bytes()).unwrap();
            p
        };
        let id_file = write("id.txt", &format!("{i}\n"));
        let recipient_err = |spec: String| Recipients::parse(&[spec]).unwrap_err().to_string();
        let e = recipient_err(id_file.display().to_string());
        assert!(e.contains("age-keygen -y") && !e.contains(&i), "{e}");
        let e = recipient_err("age1yubikey1qqqqqqqqqqqqqqqqqqqqqqqqqq".into());
        assert!(e.contains("plugin recipient (age-plugin-yubikey)"), "{e}");
        let identity_err =
            |name: &str, text: &str| Identity::load(&write(name, text)).unwrap_err().to_string();
        let e = identity_err(
            "armored",
            "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n",
        );
        assert!(e.contains("passphrase-protected"), "{e}");
        let e = identity_err("binary", "age-encryption.org/v1\n-> scrypt x 18\n");
        assert!(e.contains("passphrase-protected"), "{e}");
        let e = identity_err("plugin", "AGE-PLUGIN-YUBIKEY-1QQQQQQ\n");
        assert!(e.contains("plugin identity"), "{e}");
        let e = identity_err("recipients", &format!("{r}\n"));
        assert!(e.contains("not an identity"), "{e}");
        // The same refusals, typed: what was wrong is data, not only words.
        let e = Recipients::parse(&[id_file.display().to_string()]).unwrap_err();
        assert!(
            matches!(
                &e,
                SealError::Recipient {
                    why: RecipientProblem::IdentityFile { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        let e = Recipients::parse(&["age1yubikey1qqqqqqqqqqqqqqqqqqqqqqqqqq".into()]).unwrap_err();
        assert!(
            matches!(&e, SealError::Recipient { why: RecipientProblem::Plugin { plugin }, .. } if plugin == "yubikey"),
            "{e:?}"
        );
        let e = Recipients::parse(&[dir.path().join("none").display().to_string()]).unwrap_err();
        assert!(
            matches!(
                &e,
                SealError::Recipient {
                    why: RecipientProblem::Unreadable(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = Identity::load(&write("plugin2", "AGE-PLUGIN-YUBIKEY-1QQQQQQ\n")).unwrap_err();
        assert!(
            matches!(
                &e,
                SealError::Identity {
                    why: IdentityProblem::NotAnIdentity(_),
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn sealed_keys_open_with_a_matching_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let (r1, i1) = pair();
        let (r2, i2) = pair();
        let (_, other) = pair();
        // A recipient given as text and one in a recipients file.
        let rfile = dir.path().join("recipients.txt");
        std::fs::write(&rfile, format!("# the key safe\n{r2}\n")).unwrap();
        let rs = Recipients::parse(&[r1.clone(), rfile.display().to_string()]).unwrap();
        assert_eq!(rs.to_strings(), [r1, r2]);
        let sealed = rs.seal_base64(b"00112233445566778899AABBCCDDEEFF").unwrap();
        assert!(!sealed.contains("00112233"));
        for (name, text) in [("i1", &i1), ("i2", &i2)] {
            let p = dir.path().join(name);
            crate::private_fs::write_atomic(&p, format!("# created: now\n{text}\n").as_bytes())
                .unwrap();
            let id = Identity::load(&p).unwrap();
            assert_eq!(
                &id.open_base64(&sealed).unwrap()[..],
                b"00112233445566778899AABBCCDDEEFF"
            );
        }
        let p = dir.path().join("other");
        crate::private_fs::write_atomic(&p, other.as_bytes()).unwrap();
        let e = Identity::load(&p)
            .unwrap()
            .open_base64(&sealed)
            .unwrap_err();
        assert!(matches!(e, SealError::WrongIdentity { .. }), "{e}");
        let id = Identity::load(&dir.path().join("i1")).unwrap();
        // Not an age file; not base64; cut short: each keeps age's or base64's error.
        let e = id.open_base64("AAAA").unwrap_err();
        assert!(matches!(e, SealError::Damaged(Damage::Age(_))), "{e:?}");
        let e = id.open_base64("not base64!").unwrap_err();
        assert!(matches!(e, SealError::Damaged(Damage::Base64(_))), "{e:?}");
        assert!(
            e.to_string().starts_with("encrypted keys are damaged: "),
            "{e}"
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .unwrap();
        let e = id.open(&raw[..raw.len() - 20]).unwrap_err();
        assert!(
            matches!(e, SealError::Damaged(Damage::Age(_) | Damage::Read(_))),
            "{e:?}"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn bad_recipients_and_identities_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["age1notarecipient", "/no/such/file"] {
            let e = Recipients::parse(&[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "# nothing\n").unwrap();
        assert!(matches!(
            Recipients::parse(&[empty.display().to_string()]).unwrap_err(),
            SealError::EmptyRecipients(_)
        ));
        assert!(Identity::load(&dir.path().join("missing")).is_err());
        let e = Identity::load(&empty).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
