//! The chip's irreversible options in one list. [`ALL`] drives the plan shown before the
//! first tag, the typed confirmation (on a terminal) or `--yes-irreversible` (without one),
//! the batch's options journal record (`crate::options`: a resume with other options is refused), the
//! `irreversible` list of summary.json and the marks of `tag424 batch --dry-run`.
//!
//! Adding an option: one constant here and its line in [`ALL`]; the CLI maps its flag to it
//! in `src/cli/batch.rs` (`chosen`), and the encoder does what it says.

use crate::card::file_settings::{Access, FileSettings};

use super::journal::{Journal, TagEntry};

/// One irreversible option: what the chip is told and can never undo.
#[derive(Debug, PartialEq, Eq)]
pub struct Irreversible {
    /// Its name in the journal's options record, summary.json and `--json` (stable).
    pub id: &'static str,
    /// The `tag424 batch` flag that asks for it.
    pub flag: &'static str,
    /// What the chip is told, with the datasheet section (NT4H2421Gx Rev. 3.0).
    pub command: &'static str,
    /// What can never be undone, in one sentence.
    pub effect: &'static str,
}

/// The switch to LRP (SetConfiguration option 05h, PDCap2.1 bit 1; DS §10.5.1 Table 50:
/// "This change is permanent, LRP mode cannot be disabled afterwards"; DS §9).
pub const LRP: Irreversible = Irreversible {
    id: "lrp",
    flag: "--lrp-irreversible",
    command: "SetConfiguration 05h, LRP mode (NT4H2421Gx §10.5.1, Table 50)",
    effect: "every tag is switched to LRP mode for good: it never answers AES authentication again, and its verifier must check LRP",
};

/// The NDEF file's Write and ReadWrite access rights set to Fh (never) in the last
/// ChangeFileSettings (DS §8.2.3.3 access conditions; §10.7.1; WriteData then answers
/// PERMISSION_DENIED 919D, §10.8.2 Table 83, and ISOUpdateBinary 6982).
pub const LOCK_NDEF: Irreversible = Irreversible {
    id: "lock-ndef",
    flag: "--lock-ndef-permanently",
    command: "ChangeFileSettings of file 02: Write and ReadWrite access Fh (NT4H2421Gx §8.2.3.3, §10.7.1)",
    effect: "the URL can never be rewritten, with any key (WriteData answers 919D): a tag with a wrong URL must be thrown away",
};

/// The NDEF file's Change access right set to Fh (never) in the last ChangeFileSettings:
/// every later ChangeFileSettings of the file answers PERMISSION_DENIED 919D (DS §10.7.1,
/// Table 71).
pub const FREEZE_SETTINGS: Irreversible = Irreversible {
    id: "freeze-settings",
    flag: "--freeze-settings",
    command: "ChangeFileSettings of file 02: Change access Fh (NT4H2421Gx §10.7.1, Table 71)",
    effect: "the NDEF file's settings (SUN mirrors, access rights) can never change again, with any key: `tag424 reset` can return its keys but not its settings",
};

/// Random ID (SetConfiguration option 00h, PICCConfig bit 1; DS §10.5.1 Table 50, where it
/// is permanent): from the next activation the tag answers anticollision with a new random
/// ID, and gives its real UID only after authentication (GetCardUID).
pub const RANDOM_UID: Irreversible = Irreversible {
    id: "random-uid",
    flag: "--random-uid",
    command: "SetConfiguration 00h, Random ID (NT4H2421Gx §10.5.1, Table 50)",
    effect: "every tag answers readers and phones with a new random ID for good: its UID is read only after authentication, and `tag424 reset` cannot find it",
};

/// Every irreversible option, in the order the plan shows them.
pub const ALL: &[&Irreversible] = &[&LRP, &RANDOM_UID, &LOCK_NDEF, &FREEZE_SETTINGS];

/// Looks an option up by its id.
pub fn by_id(id: &str) -> Option<&'static Irreversible> {
    ALL.iter().copied().find(|o| o.id == id)
}

/// The irreversible options of a batch, in [`ALL`]'s order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chosen(Vec<&'static Irreversible>);

/// A journal's options record names an option this tag424 does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the journal's options name {0:?}, an irreversible option this tag424 does not know: use the tag424 that started the batch")]
pub struct UnknownOption(pub String);

impl Chosen {
    /// The options for which `on` is true.
    pub fn from_fn(on: impl Fn(&Irreversible) -> bool) -> Chosen {
        Chosen(ALL.iter().copied().filter(|o| on(o)).collect())
    }

    /// The options a journal's options record names.
    pub fn from_ids(ids: &[String]) -> Result<Chosen, UnknownOption> {
        for id in ids {
            by_id(id).ok_or_else(|| UnknownOption(id.clone()))?;
        }
        Ok(Chosen::from_fn(|o| ids.iter().any(|i| i == o.id)))
    }

    /// The option is chosen.
    pub fn has(&self, o: &Irreversible) -> bool {
        self.0.iter().any(|c| c.id == o.id)
    }

    /// No irreversible option.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The chosen options.
    pub fn iter(&self) -> impl Iterator<Item = &'static Irreversible> + '_ {
        self.0.iter().copied()
    }

    /// Their ids (journal, summary.json).
    pub fn ids(&self) -> Vec<String> {
        self.0.iter().map(|o| o.id.to_string()).collect()
    }

    /// Their flags, space separated (`--lrp-irreversible --freeze-settings`), or `none`.
    pub fn flags(&self) -> String {
        if self.0.is_empty() {
            return "no irreversible option".into();
        }
        self.0.iter().map(|o| o.flag).collect::<Vec<_>>().join(" ")
    }

    /// The file-settings part: what the last ChangeFileSettings locks.
    pub fn locks(&self) -> Locks {
        Locks {
            ndef: self.has(&LOCK_NDEF),
            settings: self.has(&FREEZE_SETTINGS),
        }
    }
}

/// What the last ChangeFileSettings of a tag locks for good (journaled per tag in its
/// `planned` record, so an interrupted tag is finished with its own plan).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Locks {
    /// Write and ReadWrite access of the NDEF file: never ([`LOCK_NDEF`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ndef: bool,
    /// Change access of the NDEF file: never ([`FREEZE_SETTINGS`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub settings: bool,
}

impl Locks {
    /// Nothing is locked.
    pub fn is_none(&self) -> bool {
        !self.ndef && !self.settings
    }

    /// Something is locked: the encoder adds the last ChangeFileSettings.
    pub fn any(&self) -> bool {
        !self.is_none()
    }

    /// `settings` with the locked access rights. Write needs ReadWrite locked too: the
    /// ReadWrite right grants writing (DS §8.2.3.3; WriteData 919D only when "Write and
    /// ReadWrite ... only have access conditions set to Fh", §10.8.2 Table 83).
    pub fn apply(&self, settings: &FileSettings) -> FileSettings {
        let mut s = settings.clone();
        if self.ndef {
            s.access.write = Access::Never;
            s.access.read_write = Access::Never;
        }
        if self.settings {
            s.access.change = Access::Never;
        }
        s
    }
}

/// The folder's irreversible options: its `batch_options` record (or an earlier tag424's
/// `options` record), or for a folder without one what its planned tags were planned with.
pub fn recorded(journal: &Journal) -> Result<Chosen, UnknownOption> {
    let tags: Vec<_> = journal.tags().collect();
    of_folder(journal.options(), &tags)
}

/// A folder's irreversible options from its options record (`options`), or, for a folder
/// of an older tag424 without one, from what its tags were planned with.
pub fn of_folder(options: Option<&[String]>, tags: &[&TagEntry]) -> Result<Chosen, UnknownOption> {
    if let Some(ids) = options {
        return Chosen::from_ids(ids);
    }
    Ok(Chosen::from_fn(|o| {
        (o.id == LRP.id && tags.iter().any(|t| t.lrp))
            || (o.id == LOCK_NDEF.id && tags.iter().any(|t| t.locks.ndef))
            || (o.id == FREEZE_SETTINGS.id && tags.iter().any(|t| t.locks.settings))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip() {
        for (i, o) in ALL.iter().enumerate() {
            assert!(ALL[..i].iter().all(|p| p.id != o.id && p.flag != o.flag));
            assert_eq!(by_id(o.id), Some(*o));
        }
        let c = Chosen::from_fn(|o| o.id != "lrp");
        assert_eq!(Chosen::from_ids(&c.ids()), Ok(c.clone()));
        assert_eq!(
            c.locks(),
            Locks {
                ndef: true,
                settings: true
            }
        );
        assert!(Chosen::from_ids(&["random".into()]).is_err());
    }
}
