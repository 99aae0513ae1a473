//! A batch's options, settled once per run: the irreversible ones ([`crate::irreversible`])
//! and the lifecycle ones ([`crate::lifecycle`]) are one journal record (`batch_options`),
//! written before the first tag is planned. While no tag is planned a run may give other
//! options (the record is written again; no chip has been touched); once one is, every run must
//! give the same, or is refused naming every option to re-run with.
//!
//! Folders of an earlier tag424 hold them in two records (`options` and `lifecycle`); they are
//! read as before, and a folder with neither has its irreversible options read from its
//! planned tags ([`crate::irreversible::of_folder`]).

use super::irreversible::{self, Chosen, UnknownOption, RANDOM_UID};
use super::journal::{now, Journal, JournalError, Record};
use super::lifecycle::{Lifecycle, LifecycleError};

/// Every option a batch gives all of its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    /// What the chip can never undo (LRP, Random ID, the locks).
    pub irreversible: Chosen,
    /// The lifecycle options; its `random_uid` is the irreversible list's Random ID.
    pub lifecycle: Lifecycle,
}

impl BatchOptions {
    /// The options a folder holds: its options record(s), or for an older folder without one
    /// what its tags were planned with.
    pub fn recorded(journal: &Journal) -> Result<BatchOptions, UnknownOption> {
        Ok(BatchOptions {
            irreversible: irreversible::recorded(journal)?,
            lifecycle: journal.lifecycle(),
        })
    }

    /// The options as the command line gives them, each once (`no option` when none).
    pub fn flags(&self) -> String {
        let mut f: Vec<String> = self.irreversible.iter().map(|o| o.flag.into()).collect();
        let lifecycle = Lifecycle {
            random_uid: false, // the irreversible list names it
            ..self.lifecycle
        };
        if lifecycle != Lifecycle::default() {
            f.push(lifecycle.flags());
        }
        if f.is_empty() {
            "no option".into()
        } else {
            f.join(" ")
        }
    }
}

/// A run's options that the batch folder cannot take.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// Every tag of a batch gets the same options.
    #[error("{dir} was started with {recorded}; this run gives {given}: every tag of a batch gets the same options")]
    Differs {
        /// The batch folder.
        dir: String,
        /// The folder's options, as flags.
        recorded: String,
        /// This run's, as flags.
        given: String,
    },
    /// A lifecycle option out of its range.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The journal names an option this tag424 does not know.
    #[error(transparent)]
    Unknown(#[from] UnknownOption),
    /// The options record could not be written.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Checks this run's options (`given`) against the folder's: the same, or refused once a tag
/// is planned; journaled (one `batch_options` record) while no tag is planned and they are
/// not what the folder already says.
pub fn settle(journal: &mut Journal, given: &BatchOptions) -> Result<(), OptionsError> {
    given.lifecycle.check()?;
    debug_assert_eq!(
        given.lifecycle.random_uid,
        given.irreversible.has(&RANDOM_UID),
        "one Random ID flag"
    );
    let recorded = BatchOptions::recorded(journal)?;
    if recorded == *given {
        return Ok(());
    }
    if journal.tags().next().is_some() {
        return Err(OptionsError::Differs {
            dir: journal.dir().display().to_string(),
            recorded: recorded.flags(),
            given: given.flags(),
        });
    }
    journal.append(Record::BatchOptions {
        irreversible: given.irreversible.ids(),
        read_ctr_limit: given.lifecycle.read_ctr_limit,
        failed_auth: given.lifecycle.failed_auth,
        time: now(),
    })?;
    Ok(())
}

impl BatchOptions {
    /// No option at all: a plain AES batch.
    pub fn none() -> BatchOptions {
        BatchOptions {
            irreversible: Chosen::from_fn(|_| false),
            lifecycle: Lifecycle::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irreversible::{FREEZE_SETTINGS, LOCK_NDEF, LRP};
    use crate::journal::PlannedKeys;
    use crate::keys::KeySet;

    fn plan_one(j: &mut Journal) {
        j.append(Record::Planned {
            uid: "04AABBCCDDEE80".into(),
            xuid: "tagaaaaa".into(),
            keys: PlannedKeys::Clear(KeySet::random()),
            time: 1,
            lrp: false,
            locks: Default::default(),
        })
        .unwrap();
    }

    fn options(ids: &[&str], read_ctr_limit: Option<u32>) -> BatchOptions {
        let irreversible = Chosen::from_fn(|o| ids.contains(&o.id));
        BatchOptions {
            lifecycle: Lifecycle {
                random_uid: irreversible.has(&RANDOM_UID),
                read_ctr_limit,
                failed_auth: None,
            },
            irreversible,
        }
    }

    fn records(dir: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(crate::journal::JOURNAL_FILE))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_journals_its_options_in_one_record_and_keeps_them_once_a_tag_is_planned() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        let mut j = Journal::open(&dir).unwrap();
        // A plain batch writes no record.
        settle(&mut j, &BatchOptions::none()).unwrap();
        assert!(records(&dir).is_empty());
        // Options: one record with all of them.
        let first = options(&[RANDOM_UID.id, LOCK_NDEF.id, FREEZE_SETTINGS.id], Some(10));
        settle(&mut j, &first).unwrap();
        let r = records(&dir);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0]["event"], "batch_options");
        assert_eq!(
            r[0]["irreversible"],
            serde_json::json!(["random-uid", "lock-ndef", "freeze-settings"])
        );
        assert_eq!(r[0]["read_ctr_limit"], 10);
        // The same again: nothing more.
        settle(&mut j, &first).unwrap();
        assert_eq!(records(&dir).len(), 1);
        // Another choice before any tag is planned replaces them (no chip was touched).
        let second = options(&[LRP.id], None);
        settle(&mut j, &second).unwrap();
        drop(j);
        let mut j = Journal::open(&dir).unwrap();
        assert_eq!(BatchOptions::recorded(&j).unwrap(), second);
        // Back to none before any tag: recorded as none, not left at LRP.
        settle(&mut j, &BatchOptions::none()).unwrap();
        assert_eq!(BatchOptions::recorded(&j).unwrap(), BatchOptions::none());
        settle(&mut j, &first).unwrap();
        // Once a tag is planned, anything else is refused, naming every option.
        plan_one(&mut j);
        let e = settle(&mut j, &options(&[RANDOM_UID.id], Some(10))).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("was started with --random-uid --lock-ndef-permanently --freeze-settings --read-counter-limit 10; this run gives --random-uid --read-counter-limit 10"),
            "{text}"
        );
        settle(&mut j, &first).unwrap();
    }

    /// A folder of the tag424 before one record: `lifecycle` then `options`, read as before.
    #[test]
    fn a_folder_with_the_two_earlier_records_reads_as_before() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        let mut j = Journal::open(&dir).unwrap();
        j.append(Record::Lifecycle {
            random_uid: true,
            read_ctr_limit: Some(7),
            failed_auth: None,
            time: 1,
        })
        .unwrap();
        j.append(Record::Options {
            irreversible: vec![RANDOM_UID.id.into()],
            time: 1,
        })
        .unwrap();
        drop(j);
        let mut j = Journal::open(&dir).unwrap();
        let old = options(&[RANDOM_UID.id], Some(7));
        assert_eq!(BatchOptions::recorded(&j).unwrap(), old);
        settle(&mut j, &old).unwrap();
        assert_eq!(records(&dir).len(), 2, "nothing rewritten");
    }
}
