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
    irreversible: Chosen,
    lifecycle: Lifecycle,
}

impl BatchOptions {
    /// The options; Random ID is the irreversible list's (the lifecycle's own `random_uid`
    /// is set from it, so the two never disagree).
    pub fn new(irreversible: Chosen, lifecycle: Lifecycle) -> BatchOptions {
        BatchOptions {
            lifecycle: Lifecycle {
                random_uid: irreversible.has(&RANDOM_UID),
                ..lifecycle
            },
            irreversible,
        }
    }

    /// No option at all: a plain AES batch.
    pub fn none() -> BatchOptions {
        BatchOptions::new(Chosen::from_fn(|_| false), Lifecycle::default())
    }

    /// What the chip can never undo (LRP, Random ID, the locks).
    pub fn irreversible(&self) -> &Chosen {
        &self.irreversible
    }

    /// The lifecycle options (Random ID as the irreversible list says).
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// The options a folder holds: its options record(s), or for an older folder without one
    /// what its tags were planned with.
    pub fn recorded(journal: &Journal) -> Result<BatchOptions, UnknownOption> {
        Ok(BatchOptions::new(
            irreversible::recorded(journal)?,
            journal.lifecycle(),
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irreversible::{FREEZE_SETTINGS, LOCK_NDEF, LRP};
    use crate::journal::PlannedKeys;
    use crate::keys::KeySet;

    fn plan_one(j: &mut Journal) {
        plan(j, false, Default::default());
    }

    fn plan(j: &mut Journal, lrp: bool, locks: crate::irreversible::Locks) {
        j.append(Record::Planned {
            uid: "04AABBCCDDEE80".into(),
            xuid: "tagaaaaa".into(),
            keys: PlannedKeys::Clear(KeySet::random()),
            time: 1,
            lrp,
            locks,
        })
        .unwrap();
    }

    fn options(ids: &[&str], read_ctr_limit: Option<u32>) -> BatchOptions {
        BatchOptions::new(
            Chosen::from_fn(|o| ids.contains(&o.id)),
            Lifecycle {
                random_uid: false, // set from the list
                read_ctr_limit,
                failed_auth: None,
            },
        )
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

    /// Folders of earlier tag424s with a planned tag: the records they have (both, one, or
    /// neither: then the tags' plans) are their options; those resume, others are refused.
    #[test]
    fn earlier_folders_with_a_planned_tag_keep_their_options() {
        let lifecycle = |random_uid, read_ctr_limit| Record::Lifecycle {
            random_uid,
            read_ctr_limit,
            failed_auth: None,
            time: 1,
        };
        let ids = |ids: &[&str]| Record::Options {
            irreversible: ids.iter().map(|i| i.to_string()).collect(),
            time: 1,
        };
        let locked = crate::irreversible::Locks {
            ndef: true,
            settings: true,
        };
        let cases = [
            (
                vec![lifecycle(true, Some(7)), ids(&[RANDOM_UID.id])],
                (false, Default::default()),
                options(&[RANDOM_UID.id], Some(7)),
            ),
            (
                vec![lifecycle(false, Some(7))],
                (false, Default::default()),
                options(&[], Some(7)),
            ),
            (
                vec![ids(&[LOCK_NDEF.id, FREEZE_SETTINGS.id])],
                (false, locked),
                options(&[LOCK_NDEF.id, FREEZE_SETTINGS.id], None),
            ),
            (vec![], (true, Default::default()), options(&[LRP.id], None)),
            (
                vec![],
                (false, locked),
                options(&[LOCK_NDEF.id, FREEZE_SETTINGS.id], None),
            ),
        ];
        for (i, (records_before, (lrp, locks), theirs)) in cases.into_iter().enumerate() {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("b");
            let mut j = Journal::open(&dir).unwrap();
            for r in records_before {
                j.append(r).unwrap();
            }
            plan(&mut j, lrp, locks);
            drop(j);
            let mut j = Journal::open(&dir).unwrap();
            assert_eq!(BatchOptions::recorded(&j).unwrap(), theirs, "case {i}");
            let n = records(&dir).len();
            settle(&mut j, &theirs).unwrap();
            assert_eq!(records(&dir).len(), n, "case {i}: resumed, nothing written");
            for other in [
                BatchOptions::none(),
                options(&[LRP.id, RANDOM_UID.id], Some(9)),
            ] {
                if other != theirs {
                    assert!(
                        matches!(settle(&mut j, &other), Err(OptionsError::Differs { .. })),
                        "case {i}: {other:?}"
                    );
                }
            }
            assert_eq!(records(&dir).len(), n, "case {i}: nothing written");
        }
    }

    /// A record of a kind a newer tag424 writes: every reader refuses the folder, naming it,
    /// and nothing is changed (not even a torn-tail healing).
    #[test]
    fn a_record_of_a_newer_tag424_is_refused_without_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        let mut j = Journal::open(&dir).unwrap();
        settle(&mut j, &options(&[LRP.id], None)).unwrap();
        drop(j);
        let path = dir.join(crate::journal::JOURNAL_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"event\":\"quantum_options\",\"time\":1}\n");
        std::fs::write(&path, &bytes).unwrap();
        let before: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        for e in [
            Journal::open(&dir).map(|_| ()).unwrap_err(),
            Journal::read_only(&dir).map(|_| ()).unwrap_err(),
            Journal::check(&dir).map(|_| ()).unwrap_err(),
        ] {
            assert!(
                matches!(&e, JournalError::Newer { line: 2, event, .. } if event == "quantum_options"),
                "{e:?}"
            );
            assert!(
                e.help().contains("use the tag424 that wrote this folder"),
                "{}",
                e.help()
            );
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "the journal is unchanged"
        );
        let after: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before, after, "no file added or removed");
    }
}
