//! The exports of a batch folder: `keys.csv` (XUID,KEY) for the platform's Keys upload, or
//! `keys.csv.age` (the same CSV sealed to the batch's recipients) for an encrypted batch, and
//! `associate.csv` (XUID,UID), which holds no key.

use zeroize::Zeroizing;

use super::KEYS_CSV_AGE;
use super::{io, write_atomic, Journal, JournalError, TagEntry, ASSOCIATE_CSV, KEYS_CSV};

impl Journal {
    /// The keys export a run writes: `keys.csv`, or `keys.csv.age` for an encrypted batch.
    pub fn keys_file(&self) -> &'static str {
        if self.sealed_to.is_some() {
            KEYS_CSV_AGE
        } else {
            KEYS_CSV
        }
    }

    /// The tags the exports list: verified and not reset.
    fn exported(&self) -> Vec<&TagEntry> {
        self.tags().filter(|t| t.verified && !t.reset).collect()
    }

    /// The text of `keys.csv`: every exported tag's SDM file read key.
    pub fn keys_csv(&self) -> Result<Zeroizing<String>, JournalError> {
        let tags = self.exported();
        // Sized up front so the key text is never copied by a growing buffer.
        let mut keys = Zeroizing::new(String::with_capacity(
            9 + tags.len() * (crate::tag_code::MAX_LEN + 34),
        ));
        keys.push_str("XUID,KEY\n");
        for t in &tags {
            let hex = t.keys()?.sdm_file_read().to_hex();
            crate::code_list::push_row(&mut keys, &[&t.xuid, &hex])?;
        }
        Ok(keys)
    }

    /// Writes `associate.csv` (XUID,UID: no key) alone. Returns how many tags it lists.
    pub fn export_associate(&self) -> Result<usize, JournalError> {
        let tags = self.exported();
        let mut assoc = String::from("XUID,UID\n");
        for t in &tags {
            crate::code_list::push_row(&mut assoc, &[&t.xuid, &t.uid])?;
        }
        let ap = self.dir.join(ASSOCIATE_CSV);
        write_atomic(&ap, assoc.as_bytes()).map_err(io(&ap))?;
        Ok(tags.len())
    }

    /// Writes the exports for the verified tags: `keys.csv`, or `keys.csv.age` for an
    /// encrypted batch (no key is written in clear), and `associate.csv`. Returns how many
    /// tags they list.
    pub fn export(&self) -> Result<usize, JournalError> {
        let keys = self.keys_csv()?;
        match &self.sealed_to {
            None => {
                let kp = self.dir.join(self.keys_file());
                write_atomic(&kp, keys.as_bytes()).map_err(io(&kp))?;
            }
            Some(rs) => {
                let sealed = rs
                    .seal(keys.as_bytes())
                    .map_err(|source| JournalError::Sealed {
                        dir: self.dir.clone(),
                        source,
                    })?;
                let kp = self.dir.join(self.keys_file());
                write_atomic(&kp, &sealed).map_err(io(&kp))?;
                // A plain keys.csv that `tag424 export` left here is stale from now on (it
                // lacks this run's tags) and holds keys in clear: it goes.
                let plain = self.dir.join(KEYS_CSV);
                match std::fs::remove_file(&plain) {
                    Ok(()) => super::sync_dir(&self.dir).map_err(io(&self.dir))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&plain)(e)),
                }
            }
        }
        self.export_associate()
    }

    /// Writes `keys.csv` in clear (and `associate.csv`), also for an encrypted batch: what
    /// `tag424 export` does when the platform's upload needs the plain file.
    pub fn export_plain(&self) -> Result<usize, JournalError> {
        self.export_plain_to(&self.dir.join(KEYS_CSV))
    }

    /// [`Journal::export_plain`] with the plain keys written to `keys` (owner-only, atomically)
    /// instead of the folder's `keys.csv`; `associate.csv` is written in the folder first, so
    /// an export that fails leaves no new plain keys file behind.
    pub fn export_plain_to(&self, keys: &std::path::Path) -> Result<usize, JournalError> {
        let text = self.keys_csv()?;
        let n = self.export_associate()?;
        write_atomic(keys, text.as_bytes()).map_err(io(keys))?;
        Ok(n)
    }
}
