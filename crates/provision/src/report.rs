//! What encoding a tag reports: where it is ([`Step`], for the operator's view) and why a tag
//! was not encoded ([`ProvisionError`], with the fix where there is one). Every provisioning
//! module (encode, lrp, reset, batch, station) speaks these; they depend on nothing above
//! the card, the journal, the keys and the layout.

use crate::card::{CardError, Sw};

use super::journal::JournalError;
use super::keys::DeriveError;
use super::layout::LayoutError;
use crate::sun::SunError;

/// Why a tag was not encoded.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A command failed, or the tag left the field ([`ProvisionError::is_tear_off`]).
    #[error(transparent)]
    Card(#[from] CardError),
    /// The tag's keys could not be derived from the master key.
    #[error(transparent)]
    Derive(#[from] DeriveError),
    /// GetVersion names another chip.
    #[error("this is not an NTAG 424 DNA: GetVersion says {product} (vendor {vendor:02X}, type {kind:02X}, subtype {subtype:02X})")]
    NotNtag424 {
        /// The product GetVersion names.
        product: &'static str,
        /// VendorID (04h: NXP).
        vendor: u8,
        /// HWType (04h: NTAG).
        kind: u8,
        /// HWSubType (02h: NTAG 424 DNA, 08h: TagTamper).
        subtype: u8,
    },
    /// The originality signature (NXP's ECC key) does not verify.
    #[error("tag {uid}: the originality signature does not verify: not a genuine NXP chip")]
    NotGenuine {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// A chip signed with the simulator's key, without `trust_simulator`.
    #[error("tag {uid} is a simulated chip (signed with tag424's published test key), not a genuine NXP chip: a simulated tag behind a PC/SC reader (vpcd) is accepted only with --trust-simulator")]
    Simulated {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// Not a factory tag and unknown to this journal.
    #[error("tag {uid} is not a factory tag and is not in this output directory's journal: it was encoded by another batch (another --out) or by someone else; nothing was written. Present it to its own batch, or return it to factory state with `tag424 reset --out OLD_DIR`")]
    Foreign {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// The NDEF file's write access is never (a tag locked with `--lock-ndef-permanently`):
    /// it can never be encoded again.
    #[error("tag {uid}'s NDEF file is locked for good (write access never, as `--lock-ndef-permanently` leaves it): it can never be encoded again; nothing was written. Set it aside")]
    LockedForGood {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// The NDEF file's settings are frozen (change access never, `--freeze-settings`):
    /// `tag424 reset` cannot return them to factory.
    #[error("tag {uid}'s NDEF file settings are frozen for good (change access never, as `--freeze-settings` leaves it): they can never return to factory; nothing was changed and the tag keeps its keys (its row in keys.csv stays)")]
    Frozen {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// Half-encoded by another batch folder: refused before anything is written.
    #[error("tag {uid} holds another batch's settings (an encoding under another --out was interrupted); nothing was written. Present it to that batch to finish it, or return it to factory state with `tag424 reset --out OLD_DIR`")]
    OtherBatch {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// Key 0 is neither the journaled key nor the factory key (its key version, read without
    /// authentication, or the one refused authentication says so).
    #[error("tag {uid}: key 0 is neither its journaled key nor the factory key (its key version or a refused authentication says so); it was changed outside this tool")]
    Unrecoverable {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// An LRP tag in an AES batch.
    #[error(
        "tag {uid} is in LRP mode: encode it with --lrp-irreversible (its verifier must check LRP)"
    )]
    LrpTag {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// `{tt}` in the template and a tag without TagTamper.
    #[error("tag {uid} is not an NTAG 424 DNA TagTamper, but the URL template has {{tt}}: use TagTamper tags, or remove {{tt}}")]
    NotTagTamper {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// A tag that answers with a random ID and factory keys, in a batch without `--random-uid`.
    #[error("tag {uid} (its real UID, read after authenticating with the factory key) has Random ID switched on already (permanent): encode it in a batch with --random-uid; nothing was written")]
    RandomIdNotAsked {
        /// The tag's real UID (14 hex digits).
        uid: String,
    },
    /// A tag that answers with a random ID, has keys that are not factory, and is none of this
    /// journal's Random ID tags (its SUN message verifies with none of their keys).
    #[error("this tag has Random ID switched on (GetVersion shows no UID) and its key 0 is not the factory key, but its SUN message verifies with none of this folder's Random ID tags: it belongs to another batch (present it there) or was changed outside this tool; no key was tried, nothing was changed")]
    RandomIdUnknown,
    /// `tag424 reset` of a tag with Random ID on (not supported yet).
    #[error("this tag has Random ID switched on (GetVersion shows no UID): `tag424 reset` does not find such tags yet (it looks tags up by that UID); nothing was changed. Random ID itself can never be switched off")]
    RandomIdReset,
    /// The code list is used up.
    #[error("no unused tag code (XUID) is left for tag {uid}")]
    NoXuidLeft {
        /// The tag's UID (14 hex digits).
        uid: String,
    },
    /// The read-back SUN message does not verify with the new keys.
    #[error("tag {uid}: the read-back SUN message does not verify: {why}")]
    Verification {
        /// The tag's UID (14 hex digits).
        uid: String,
        /// What did not verify.
        #[source]
        why: ReadBackError,
    },
    /// The template cannot be laid out for this tag code.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The journal could not be written (the chip was not told to change anything after).
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// What the chip's 91AD AUTHENTICATION_DELAY means and what to do (NT4H2421Gx §10.3, AN12196
/// §7.4; docs/chip-facts.md §5).
pub const AUTH_DELAY_HELP: &str = "the tag answered 91AD (AUTHENTICATION_DELAY): the chip counts failed authentications in its non-volatile memory (TotFailCtr: +1 per failure, lowered by each success; at its limit the key is blocked for good) and after failed attempts refuses new ones until a delay has passed (NXP does not publish the delay; it is reported to survive a re-tap). Nothing was changed. Wait a few seconds and present the tag again; tag424 never tries another key to get past it. `tag424 info --reader … --out DIR…` says without authenticating which journal holds its keys";

/// What follows a refused authentication (91AE): one key was tried (the factory key, or the
/// one the folder's journal holds for the tag), and no other.
pub const AUTH_ERROR_HELP: &str = "tag424 tried one key, the factory key or the one this folder's journal holds for the tag, and tries no other after a refusal (each failure counts on the chip and can start its delay, 91AD). `tag424 info --reader … --out DIR…` says without authenticating which journal holds this tag's keys";

/// Why a tag's read-back SUN message does not verify ([`ProvisionError::Verification`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadBackError {
    /// The NDEF file read back holds no URI record.
    #[error("the NDEF file does not hold a URI record")]
    NoUri,
    /// The URL does not follow the template, or its SUN message cannot be checked.
    #[error(transparent)]
    Sun(#[from] SunError),
    /// The SUN message is not genuine (the verifier's reason).
    #[error("{0}")]
    NotGenuine(String),
    /// The URL names another tag code.
    #[error("the URL carries tag code {found:?}, expected {expected}")]
    OtherTagCode {
        /// The tag code the URL carries.
        found: Option<String>,
        /// The tag code planned for this tag.
        expected: String,
    },
    /// The UID mirrored in the URL is not the chip's.
    #[error("the mirrored UID is not the chip's")]
    OtherUid,
    /// The URL carries no read counter.
    #[error("no counter in the URL")]
    NoCounter,
}

impl ProvisionError {
    /// The fix for the operator, where there is one beyond the message: the chip's
    /// authentication delay (91AD) and refused authentications.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            ProvisionError::Card(e) if e.status() == Some(Sw::AuthenticationDelay) => {
                Some(AUTH_DELAY_HELP)
            }
            ProvisionError::Card(e) if e.status() == Some(Sw::AuthenticationError) => {
                Some(AUTH_ERROR_HELP)
            }
            ProvisionError::Foreign { .. } | ProvisionError::Unrecoverable { .. } => {
                Some(AUTH_ERROR_HELP)
            }
            _ => None,
        }
    }

    /// True when the tag left the field: present it again to finish it.
    pub fn is_tear_off(&self) -> bool {
        matches!(self, ProvisionError::Card(e) if e.is_tear_off())
    }

    /// True when an exchange was cut (the tag left the field or its answer was lost): the
    /// journal and the chip say where the tag is; the batch resumes it.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, ProvisionError::Card(e) if e.is_interrupted())
    }

    /// The UID (14 hex digits) of the tag the error is about, when the tag was identified.
    pub fn uid(&self) -> Option<&str> {
        match self {
            ProvisionError::NotGenuine { uid }
            | ProvisionError::Simulated { uid }
            | ProvisionError::Foreign { uid }
            | ProvisionError::OtherBatch { uid }
            | ProvisionError::LockedForGood { uid }
            | ProvisionError::Frozen { uid }
            | ProvisionError::Unrecoverable { uid }
            | ProvisionError::LrpTag { uid }
            | ProvisionError::NotTagTamper { uid }
            | ProvisionError::RandomIdNotAsked { uid }
            | ProvisionError::NoXuidLeft { uid }
            | ProvisionError::Verification { uid, .. } => Some(uid),
            ProvisionError::Card(_)
            | ProvisionError::Derive(_)
            | ProvisionError::NotNtag424 { .. }
            | ProvisionError::Layout(_)
            | ProvisionError::RandomIdUnknown
            | ProvisionError::RandomIdReset
            | ProvisionError::Journal(_) => None,
        }
    }
}

/// Where the encoder is; the CLI turns these into the operator's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// GetVersion, the UID and the originality signature.
    Identify,
    /// AuthenticateEV2First (or LRPFirst) with key 0.
    Authenticate,
    /// The irreversible switch to LRP (`--lrp-irreversible`).
    SwitchToLrp,
    /// The irreversible switch to Random ID (`--random-uid`).
    RandomId,
    /// The failed-authentication counter's limit (`--failed-auth-limit`; reversible).
    FailedAuthLimit,
    /// The NDEF file and its SDM settings.
    WriteNdef,
    /// ChangeKey of keys 1 to 4, then key 0.
    ChangeKeys,
    /// The read-back verified before the last ChangeFileSettings locks the NDEF file or
    /// freezes its settings for good (`--lock-ndef-permanently`, `--freeze-settings`).
    Lock,
    /// Reading the SUN message back and verifying it with the new keys.
    Verify,
}
