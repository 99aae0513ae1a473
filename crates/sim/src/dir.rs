//! A directory of simulated tags (one JSON file per tag, named by UID) and the simulated reader
//! that presents them one at a time, as a stack of tags at a real reader.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{ChipState, Flaky, SimChip, SimTransport};
use crate::state::StateError;
use tag424_core::transport::{Transport, TransportError};

mod options;

pub use options::{
    FractionError, SimOptionError, SimOptionProblem, SimReaderOptions, MAX_FAULT, MAX_LATENCY,
};

/// Why the tag directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimDirError {
    /// A file or the directory could not be read or written.
    #[error("simulated tag directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A tag file that is not JSON of a chip state (or a state that does not serialize).
    #[error("{path} is not a simulated tag file: {source}")]
    Corrupt {
        /// The tag file.
        path: PathBuf,
        /// What the JSON reader (or writer) reported.
        #[source]
        source: serde_json::Error,
    },
    /// A tag file that parses but does not describe a chip the simulator could be.
    #[error("{path} is not a simulated tag file: {source}")]
    Invalid {
        /// The tag file.
        path: PathBuf,
        /// What is wrong with the state.
        #[source]
        source: StateError,
    },
    /// No tag with this UID (hex) in the directory.
    #[error("no simulated tag {0} in the directory")]
    NotFound(String),
    /// The directory does not exist.
    #[error("there is no simulated tag directory {0} (`tag424 sim new --dir DIR` makes tags)")]
    Missing(PathBuf),
}

/// A directory of simulated tags.
#[derive(Debug, Clone)]
pub struct SimDir {
    dir: PathBuf,
}

impl SimDir {
    /// Opens the directory, creating it owner-only (0700): tag files hold keys.
    pub fn open(dir: &Path) -> Result<SimDir, SimDirError> {
        crate::private_fs::create_dir(dir).map_err(|source| SimDirError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(SimDir {
            dir: dir.to_path_buf(),
        })
    }

    /// Opens an existing directory; a missing one is an error (nothing is created).
    pub fn open_existing(dir: &Path) -> Result<SimDir, SimDirError> {
        if !dir.is_dir() {
            return Err(SimDirError::Missing(dir.to_path_buf()));
        }
        Ok(SimDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, uid: &[u8; 7]) -> PathBuf {
        self.dir.join(format!("{}.json", hex::encode_upper(uid)))
    }

    /// Saves a tag as `UID.json`, owner-only and atomically (the file holds the tag's keys).
    pub fn save(&self, state: &ChipState) -> Result<(), SimDirError> {
        let path = self.file(&state.uid);
        let json = serde_json::to_vec_pretty(state).map_err(|source| SimDirError::Corrupt {
            path: path.clone(),
            source,
        })?;
        // Owner-only (the file holds the tag's keys), fsync'd and renamed atomically, as a real
        // chip's NVM write either happens or does not.
        crate::private_fs::write_atomic(&path, &json)
            .map_err(|source| SimDirError::Io { path, source })
    }

    /// Reads and checks one tag file.
    pub fn load_file(path: &Path) -> Result<ChipState, SimDirError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimDirError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let state: ChipState =
            serde_json::from_str(&text).map_err(|source| SimDirError::Corrupt {
                path: path.to_path_buf(),
                source,
            })?;
        state.validate().map_err(|source| SimDirError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(state)
    }

    /// Every tag, in UID order.
    pub fn list(&self) -> Result<Vec<ChipState>, SimDirError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|source| SimDirError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::load_file(p)).collect()
    }

    /// Creates and saves a factory tag with a random UID.
    pub fn new_tag(&self) -> Result<ChipState, SimDirError> {
        let s = ChipState::random_factory();
        self.save(&s)?;
        Ok(s)
    }
}

/// A simulated tag in the field; every change to its non-volatile state is saved at once, so
/// a killed process leaves the tag as a real one would be.
#[derive(Debug)]
pub struct DirTransport {
    /// The simulated tag.
    pub inner: SimTransport,
    dir: SimDir,
}

impl DirTransport {
    /// The tag with this state in the field, saved into `dir` after every change.
    pub fn new(dir: SimDir, state: ChipState) -> Self {
        DirTransport {
            inner: SimTransport::new(SimChip::new(state)),
            dir,
        }
    }

    /// Every exchange takes at least `latency` (see [`SimTransport::with_latency`]).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.inner = self.inner.with_latency(latency);
        self
    }

    /// Draws a flaky reader's faults for every exchange (see [`SimTransport::with_flaky`]).
    pub fn with_flaky(mut self, flaky: Flaky, seed: u64) -> Self {
        self.inner = self.inner.with_flaky(flaky, seed);
        self
    }

    /// The tag's current non-volatile state.
    pub fn state(&self) -> &ChipState {
        &self.inner.chip.state
    }
}

impl Transport for DirTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let before = self.inner.chip.state.clone();
        let r = self.inner.transmit(command);
        if self.inner.chip.state != before {
            self.dir
                .save(&self.inner.chip.state)
                .map_err(|e| TransportError::Backend {
                    context: "saving the simulated tag".into(),
                    source: Box::new(e),
                })?;
        }
        r
    }
    fn reconnect(&mut self) -> bool {
        self.inner.reconnect()
    }
}

/// The simulated reader: presents the directory's existing tags once each (in UID order,
/// leaving out the ones the batch has finished: see [`SimReader::skip_finished`]), then fresh
/// factory tags (created on demand).
#[derive(Debug)]
pub struct SimReader {
    dir: SimDir,
    queue: Vec<ChipState>,
    fresh: bool,
    options: SimReaderOptions,
    /// Seeds each presented tag's faults (a flaky reader).
    rng: Box<StdRng>,
}

impl SimReader {
    /// `fresh`: create factory tags when the existing ones are used up.
    pub fn new(dir: SimDir, fresh: bool) -> Result<Self, SimDirError> {
        let mut queue = dir.list()?;
        queue.reverse();
        Ok(SimReader {
            dir,
            queue,
            fresh,
            options: SimReaderOptions::default(),
            rng: Box::new(StdRng::from_entropy()),
        })
    }

    /// The directory whose tags this reader presents.
    pub fn dir(&self) -> &SimDir {
        &self.dir
    }

    /// Applies the reader's options (latency, faults) to every tag it presents.
    pub fn with_options(mut self, options: SimReaderOptions) -> Self {
        self.options = options;
        if let Some(seed) = options.seed {
            self.rng = Box::new(StdRng::seed_from_u64(seed));
        }
        self
    }

    /// Leaves the tags for which `finished(uid)` is true out of the stack: a resumed batch is
    /// presented only the tags it has not finished (an interrupted one, a tag of another
    /// batch, a factory tag), not every tag it already did.
    pub fn skip_finished(&mut self, finished: &dyn Fn(&[u8; 7]) -> bool) {
        self.queue.retain(|s| !finished(&s.uid));
    }

    /// The next tag in the field, or `None` when the stack is empty.
    pub fn next_tag(&mut self) -> Result<Option<DirTransport>, SimDirError> {
        let state = match self.queue.pop() {
            Some(s) => s,
            None if self.fresh => self.dir.new_tag()?,
            None => return Ok(None),
        };
        let seed = self.rng.gen();
        Ok(Some(
            DirTransport::new(self.dir.clone(), state)
                .with_latency(self.options.latency)
                .with_flaky(self.options.flaky, seed),
        ))
    }
}

impl tag424_core::transport::TagSource for SimReader {
    type Tag = DirTransport;
    fn next_tag(&mut self) -> Result<Option<Self::Tag>, Box<dyn std::error::Error + Send + Sync>> {
        SimReader::next_tag(self).map_err(|e| Box::new(e) as _)
    }
    fn skip_finished(&mut self, finished: &dyn Fn(&[u8; 7]) -> bool) {
        SimReader::skip_finished(self, finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// A tag file that parses but is not a chip is `Invalid` with the state's error as its
    /// source; one that does not parse is `Corrupt` with the JSON error.
    #[test]
    fn a_refused_tag_file_keeps_the_states_error_as_the_source() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = SimDir::open(tmp.path()).expect("open");
        let mut s = ChipState::factory([0x04, 1, 2, 3, 4, 5, 6]);
        s.files[1].sdm_read_ctr = 0x100_0000;
        dir.save(&s).expect("save");
        let path = tmp.path().join("04010203040506.json");
        match SimDir::load_file(&path) {
            Err(SimDirError::Invalid { path: p, source }) => {
                assert_eq!(p, path);
                assert_eq!(
                    source,
                    StateError::SdmReadCtr {
                        file_no: 2,
                        value: 0x100_0000
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        let e = dir.list().expect_err("refused");
        assert!(
            e.source()
                .and_then(|s| s.downcast_ref::<StateError>())
                .is_some(),
            "{e:?}"
        );
        std::fs::write(&path, "{}").expect("write");
        match SimDir::load_file(&path) {
            Err(SimDirError::Corrupt { source, .. }) => assert!(source.is_data(), "{source}"),
            other => panic!("{other:?}"),
        }
    }
}
