//! The host's reading of a simulated tag's stored file settings, for the suites that inspect a
//! tag or set one up. The chip itself keeps and reads them with its own `chip::settings`; the
//! host's `FileSettings` never enters the simulator.
#![allow(dead_code)]

use tag424::card::file_settings::FileSettings;
use tag424::sim::state::SimFile;

/// The file's stored settings (its GetFileSettings image), as the host reads them.
pub fn settings(f: &SimFile) -> FileSettings {
    FileSettings::parse(&f.settings).expect("a simulated file's stored settings parse")
}

/// Stores `fs` as the file's settings (the GetFileSettings image: FileType, the
/// ChangeFileSettings bytes, the file's size after the access rights).
pub fn set_settings(f: &mut SimFile, fs: &FileSettings) {
    let change = fs.encode_change();
    let mut v = vec![0x00, change[0], change[1], change[2]];
    v.extend_from_slice(&(f.data.len() as u32).to_le_bytes()[..3]);
    v.extend_from_slice(&change[3..]);
    f.settings = v;
}
