//! Keys at rest in the journal: which recipients a batch seals to, whether a run may open
//! the folder (`--encrypt-to`, `--identity`), and opening sealed records.

use std::path::Path;

use super::{Journal, JournalError, PlannedKeys, Record};
use crate::keys::KeySet;
use crate::sealed::{Damage, Identity, Recipients, SealError};

/// How a batch folder's keys are kept at rest, as a run asks for it.
#[derive(Debug, Default)]
pub struct KeyAccess {
    /// `--encrypt-to`: seal the keys of a new batch to these recipients. An encrypted folder
    /// remembers its recipients; given again, they must be the same.
    pub encrypt_to: Option<Recipients>,
    /// `--identity`: opens the sealed keys of an encrypted batch.
    pub identity: Option<Identity>,
}

/// The recipients a journal's records seal to, if it is an encrypted batch.
pub(super) fn sealed_recipients(records: &[Record]) -> Option<&[String]> {
    records.iter().rev().find_map(|r| match r {
        Record::Sealed { recipients, .. } => Some(recipients.as_slice()),
        _ => None,
    })
}

impl Journal {
    /// Decides how the keys of this run are kept, or refuses the folder.
    pub(super) fn sealing(
        dir: &Path,
        records: &[Record],
        keys: &KeyAccess,
    ) -> Result<Sealing, JournalError> {
        let sealing = Journal::sealing_of(dir, records, keys)?;
        // An identity given for an encrypted batch must open what it seals, also before any
        // key is planned: found out now, not when the batch is to be resumed or exported.
        if let (Sealing::Start(rs) | Sealing::Continue(rs), Some(id)) = (&sealing, &keys.identity) {
            let probe = rs.seal(b"tag424").and_then(|sealed| id.open(&sealed));
            probe.map_err(|source| JournalError::Sealed {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        Ok(sealing)
    }

    fn sealing_of(
        dir: &Path,
        records: &[Record],
        keys: &KeyAccess,
    ) -> Result<Sealing, JournalError> {
        let planned = records.iter().any(|r| matches!(r, Record::Planned { .. }));
        let sealed_err = |source| JournalError::Sealed {
            dir: dir.to_path_buf(),
            source,
        };
        match (sealed_recipients(records), &keys.encrypt_to) {
            (None, None) => Ok(Sealing::Clear),
            (None, Some(_)) if planned => Err(JournalError::ClearFolder {
                dir: dir.to_path_buf(),
            }),
            (None, Some(rs)) => Ok(Sealing::Start(rs.clone())),
            (Some(theirs), given) => {
                let rs = Recipients::parse(theirs).map_err(sealed_err)?;
                if let Some(given) = given {
                    // The same set: order and repeats do not matter.
                    let mut a = rs.to_strings();
                    let mut b = given.to_strings();
                    a.sort();
                    a.dedup();
                    b.sort();
                    b.dedup();
                    if a != b {
                        return Err(JournalError::OtherRecipients {
                            dir: dir.to_path_buf(),
                            recipients: a.join(", "),
                            given: b.join(", "),
                        });
                    }
                }
                if planned && keys.identity.is_none() {
                    return Err(JournalError::IdentityNeeded {
                        dir: dir.to_path_buf(),
                        recipients: theirs.join(", "),
                    });
                }
                Ok(Sealing::Continue(rs))
            }
        }
    }

    /// The records with every sealed key opened by `identity` (left sealed without one).
    pub(super) fn opened(
        dir: &Path,
        mut records: Vec<Record>,
        identity: Option<&Identity>,
    ) -> Result<Vec<Record>, JournalError> {
        let Some(id) = identity else {
            return Ok(records);
        };
        for r in &mut records {
            if let Record::Planned { keys, uid, .. } = r {
                if let PlannedKeys::Sealed { age } = keys {
                    let plain = id.open_base64(age).map_err(|source| JournalError::Sealed {
                        dir: dir.to_path_buf(),
                        source,
                    })?;
                    // serde's message could quote the opened text (keys): a fixed one.
                    let set: KeySet =
                        serde_json::from_slice(&plain).map_err(|_| JournalError::Sealed {
                            dir: dir.to_path_buf(),
                            source: SealError::Damaged(Damage::NotFiveKeys {
                                uid: uid.to_string(),
                            }),
                        })?;
                    *keys = PlannedKeys::Clear(set);
                }
            }
        }
        Ok(records)
    }
}

/// How one run keeps its keys.
pub(super) enum Sealing {
    Clear,
    /// An encrypted batch, opened again.
    Continue(Recipients),
    /// A new encrypted batch: its first record names the recipients.
    Start(Recipients),
}

impl Journal {
    /// The form of `r` to write: a `planned` record of an encrypted batch with its keys sealed
    /// to the batch's recipients (`None`: `r` as it is).
    pub(super) fn sealed_form(&self, r: &Record) -> Result<Option<Record>, JournalError> {
        Ok(match (r, &self.sealed_to) {
            (
                Record::Planned {
                    uid,
                    xuid,
                    keys: PlannedKeys::Clear(k),
                    time,
                    lrp,
                    locks,
                },
                Some(rs),
            ) => {
                // Sized up front (five keys are 176 bytes of JSON): no freed copy of the keys.
                let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(512));
                serde_json::to_writer(&mut *plain, k).map_err(|e| JournalError::Io {
                    path: self.path.clone(),
                    source: e.into(),
                })?;
                let age = rs
                    .seal_base64(&plain)
                    .map_err(|source| JournalError::Sealed {
                        dir: self.dir.clone(),
                        source,
                    })?;
                Some(Record::Planned {
                    uid: uid.clone(),
                    xuid: xuid.clone(),
                    keys: PlannedKeys::Sealed { age },
                    time: *time,
                    lrp: *lrp,
                    locks: *locks,
                })
            }
            _ => None,
        })
    }
}
