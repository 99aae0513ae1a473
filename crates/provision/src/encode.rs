//! Encoding one tag in the minimal number of APDU exchanges, and finishing a tag whose
//! encoding was interrupted.
//!
//! Fresh tag (15 exchanges): ISOSelectFile (1), GetVersion (3), Read_Sig (1),
//! AuthenticateEV2First with the factory key (2), WriteData NDEF (1), ChangeFileSettings (1),
//! ChangeKey 1–4 (4), ChangeKey 0 (1), ReadData of the NDEF file as a phone reads it (1).
//! The new keys are in the journal, on disk, before the first ChangeKey (and before the SDM
//! settings): the plan is journaled right after the NDEF write succeeds, so a tag that another
//! batch left half-encoded (write access no longer free) is refused before anything is written.
//!
//! An LRP batch (`--lrp-irreversible`, see `lrp.rs`) runs the same flow: after the plan, the
//! switch to LRP is journaled as its own step, sent, and the tag authenticated again in LRP;
//! the SDM settings and the keys follow in LRP (18 exchanges). `{tt}` in the template adds
//! SetConfiguration 07 (enable TagTamper) right before the SDM settings (one more exchange).
//! `--random-uid` and `--failed-auth-limit` (lifecycle.rs) add one SetConfiguration each (00,
//! then 0A), in the factory key-0 session before the SDM settings.

use crate::card::{Card, CardError, CommMode, Session, Sw};
use crate::crypto::sdm::SdmMode;
use crate::crypto::AesKey;
use crate::originality::{classify, Originality};
use crate::sun::template::Part;
use crate::sun::Template;
use crate::transport::Transport;

use super::irreversible::Locks;
use super::journal::{now, Journal, JournalAccess, PlannedKeys, Record, TagEntry};
use super::keys::{KeyNo, KeySet, KEY_VERSION};
use super::layout::{layout, NdefLayout};
use super::lifecycle::Lifecycle;
pub use super::report::{ProvisionError, ReadBackError, Step, AUTH_DELAY_HELP, AUTH_ERROR_HELP};

mod readback;
pub(crate) use readback::check_url;
use readback::read_back;

/// Options of an encoding run.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// The URL template written (with SDM mirrors) to each tag's NDEF file.
    pub template: Template,
    /// Accept chips signed with the simulator's published key (never genuine NXP).
    pub trust_simulator: bool,
    /// Derive each tag's keys from this master key (AN10922) instead of drawing them at random.
    pub master: Option<AesKey>,
    /// What the last ChangeFileSettings locks for good (`--lock-ndef-permanently`,
    /// `--freeze-settings`; sent after keys 1–4 and a verified read-back, before key 0).
    /// Journaled per tag: an interrupted tag is finished with the locks it was planned with.
    pub locks: Locks,
    /// The chip's lifecycle options (Random ID, IRREVERSIBLE; SDMReadCtrLimit).
    pub lifecycle: Lifecycle,
}

/// The NDEF file and SDM settings of tag code `xuid` under `opts` (template and read
/// counter limit).
pub(super) fn plan_for(opts: &EncodeOptions, xuid: &str) -> Result<NdefLayout, ProvisionError> {
    Ok(layout(&opts.template, xuid)?.with_read_ctr_limit(opts.lifecycle.read_ctr_limit))
}

/// What happened to a tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Encoded and verified.
    Encoded {
        /// The tag's UID (14 hex digits).
        uid: String,
        /// The tag code written into its URL.
        xuid: String,
        /// The SDM read counter of the verified read-back SUN message.
        read_ctr: u32,
        /// APDUs exchanged for this tag.
        exchanges: usize,
        /// An interrupted encoding was finished (the journal knew the tag).
        recovered: bool,
    },
    /// Already encoded and verified in this journal; nothing done, no XUID used.
    AlreadyDone {
        /// The tag's UID (14 hex digits).
        uid: String,
        /// Its tag code.
        xuid: String,
    },
}

/// Facts read from the chip before anything is changed.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The 7-byte UID (GetVersion).
    pub uid: [u8; 7],
    /// The originality signature check (Read_Sig).
    pub originality: Originality,
    /// An NTAG 424 DNA TagTamper (NT4H2421Tx, HWSubType 08h).
    pub tag_tamper: bool,
    /// Random ID is on: GetVersion gave a zero UID (NT4H2421Gx Table 58), `uid` is zero and
    /// `originality` is checked once GetCardUID gave the real UID ([`check_originality`]).
    pub random_id: bool,
    /// The originality signature (Read_Sig), over the real UID.
    pub signature: Vec<u8>,
}

/// Checks the originality signature against the (real) UID.
pub fn check_originality(
    uid: &[u8; 7],
    sig: &[u8],
    trust_simulator: bool,
) -> Result<Originality, ProvisionError> {
    let originality = classify(uid, sig, trust_simulator);
    if originality == Originality::Invalid {
        // Name a simulated chip as such, with the flag that accepts it.
        let simulated = !trust_simulator && classify(uid, sig, true) == Originality::Simulated;
        let uid = hex::encode_upper(uid);
        if simulated {
            return Err(ProvisionError::Simulated { uid });
        }
        return Err(ProvisionError::NotGenuine { uid });
    }
    Ok(originality)
}

/// Select, GetVersion, Read_Sig: is this an NTAG 424 DNA, which one, and is it genuine?
pub fn identify<T: Transport>(
    card: &mut Card<T>,
    trust_simulator: bool,
) -> Result<Identity, ProvisionError> {
    card.select_ndef_application()?;
    let v = card.get_version()?;
    if !v.is_ntag424_dna() {
        return Err(ProvisionError::NotNtag424 {
            product: v.product(),
            vendor: v.hardware.vendor_id,
            kind: v.hardware.kind,
            subtype: v.hardware.subtype,
        });
    }
    let sig = card.read_sig()?;
    // Random ID on: GetVersion's UID is all zero; the signature is over the real UID, which
    // only GetCardUID gives (after authentication).
    let random_id = v.uid == [0u8; 7];
    let originality = if random_id {
        Originality::Invalid
    } else {
        check_originality(&v.uid, &sig, trust_simulator)?
    };
    Ok(Identity {
        uid: v.uid,
        originality,
        tag_tamper: v.hardware.subtype == 0x08,
        random_id,
        signature: sig.to_vec(),
    })
}

/// Encodes the tag on `card`, or finishes it if the journal knows it.
/// `next_xuid` is asked for a tag code only when a fresh tag needs one, with the journal held:
/// the code it returns is taken atomically with respect to every other user of the journal.
pub fn encode_tag<T: Transport, J: JournalAccess>(
    card: &mut Card<T>,
    journal: &mut J,
    opts: &EncodeOptions,
    next_xuid: &mut dyn FnMut(&Journal) -> Option<String>,
    step: &mut dyn FnMut(Step),
) -> Result<Outcome, ProvisionError> {
    let start = card.exchanges();
    step(Step::Identify);
    let mut id = identify(card, opts.trust_simulator)?;
    if id.random_id {
        // Random ID on: found by what the journal points to, never by trying keys.
        if super::random_uid::key0_is_factory(card)? {
            // The factory key: AES, or LRP when the tag was switched (919D to AES); then
            // GetCardUID (CommMode.Full: the UID comes encrypted, its MACt verified).
            let s = match card.authenticate_ev2_first(0, &AesKey::FACTORY) {
                Ok(s) => s,
                Err(e) if e.status() == Some(Sw::PermissionDenied) => {
                    match card.authenticate_lrp_first(0, &AesKey::FACTORY) {
                        Ok(s) => s,
                        Err(e) if e.status() == Some(Sw::AuthenticationError) => {
                            return Err(ProvisionError::RandomIdUnknown)
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) if e.status() == Some(Sw::AuthenticationError) => {
                    return Err(ProvisionError::RandomIdUnknown)
                }
                Err(e) => return Err(e.into()),
            };
            let (session, uid) = s.get_card_uid()?;
            let originality = check_originality(&uid, &id.signature, opts.trust_simulator)?;
            let hex_uid = hex::encode_upper(uid);
            let known = journal.with(|j| j.tag(&hex_uid).filter(|t| !t.reset).cloned());
            match known {
                // Journaled and unfinished: finished in this same session (no second
                // authentication, fewer exchanges for a flaky reader to lose).
                Some(entry) if !entry.verified => {
                    return finish_revealed(session, journal, opts, &entry, start, step);
                }
                _ => {
                    // ISOSelectFile ends the authentication; the tag goes on as one that
                    // showed its real UID.
                    session.end().select_ndef_application()?;
                    id.uid = uid;
                    id.originality = originality;
                }
            }
        } else {
            let entry = super::random_uid::find_planned(card, journal, opts)?;
            if entry.verified {
                return Ok(Outcome::AlreadyDone {
                    uid: entry.uid,
                    xuid: entry.xuid,
                });
            }
            return finish_changed(card, journal, opts, &entry, start, step);
        }
    }
    let uid = hex::encode_upper(id.uid);
    if let Some(entry) = journal.with(|j| j.tag(&uid).filter(|t| !t.reset).cloned()) {
        if entry.verified {
            return Ok(Outcome::AlreadyDone {
                uid,
                xuid: entry.xuid,
            });
        }
        return finish(card, journal, opts, &entry, start, step);
    }
    let xuid = journal
        .with(|j| next_xuid(j))
        .ok_or_else(|| ProvisionError::NoXuidLeft { uid: uid.clone() })?;
    if id.random_id && !opts.lifecycle.random_uid {
        return Err(ProvisionError::RandomIdNotAsked { uid });
    }
    let plan = plan_for(opts, &xuid)?;
    let keys = match &opts.master {
        Some(m) => KeySet::diversified(m, &id.uid)?,
        None => KeySet::random(),
    };
    let lrp = opts.template.mode() == SdmMode::Lrp;
    step(Step::Authenticate);
    // An LRP tag answers an AES first authentication with 919D (permission denied).
    let (s, switch) = match card.authenticate_ev2_first(0, &AesKey::FACTORY) {
        Ok(s) => (s, lrp),
        Err(e) if lrp && e.status() == Some(Sw::PermissionDenied) => {
            (super::lrp::first_auth(card, &AesKey::FACTORY, &uid)?, false)
        }
        Err(e) if e.status() == Some(Sw::PermissionDenied) => {
            return Err(ProvisionError::LrpTag { uid })
        }
        Err(e) if e.status() == Some(Sw::AuthenticationError) => {
            return Err(ProvisionError::Foreign { uid })
        }
        Err(e) => return Err(e.into()),
    };
    if opts.template.has(&Part::Tt) && !id.tag_tamper {
        return Err(ProvisionError::NotTagTamper { uid });
    }
    step(Step::WriteNdef);
    // A factory tag's NDEF file is free to write; a tag another batch left with its settings
    // (write access by key 3, not this key-0 session: 91AE, or never: 919D) refuses, and
    // nothing is written anywhere. In an LRP batch the file is written before the switch,
    // so a tag of another batch is refused while it is still AES.
    let written = s.write_data(2, 0, &plan.file, CommMode::Plain);
    let s = match written {
        Ok(s) => s,
        Err(e) => {
            let status = e.status();
            // Write and ReadWrite never (DS §10.8.2 Table 83): locked for good by a batch.
            if status == Some(Sw::PermissionDenied) && locked_for_good(card)? {
                return Err(ProvisionError::LockedForGood { uid });
            }
            if matches!(status, Some(Sw::AuthenticationError | Sw::PermissionDenied)) {
                return Err(ProvisionError::OtherBatch { uid });
            }
            return Err(e.into());
        }
    };
    // The keys are on disk before the chip hears of them.
    journal.with(|j| {
        j.append(Record::Planned {
            uid: uid.clone(),
            xuid: xuid.clone(),
            keys: PlannedKeys::Clear(keys.clone()),
            time: now(),
            lrp,
            locks: opts.locks,
        })
    })?;
    // The irreversible switch is journaled as its own step before it is sent, and comes
    // before any key changes: the keys change in the mode the tag keeps.
    let s = if switch {
        let s = super::lrp::switch(s, journal, &uid, step)?;
        step(Step::WriteNdef);
        s
    } else {
        s
    };
    // IRREVERSIBLE: Random ID, journaled first, in the factory key-0 session and before the
    // SDM settings and every key change (see lifecycle.rs for why this place).
    let s = if opts.lifecycle.random_uid {
        super::random_uid::switch_on(s, journal, &uid, false, step)?
    } else {
        s
    };
    let s = failed_auth_limit(s, opts, step)?;
    let s = sdm_settings(s, opts, &plan)?;
    step(Step::ChangeKeys);
    let mut s = s;
    for k in KeyNo::APP {
        s = s.change_key(k.get(), &AesKey::FACTORY, keys.key(k), KEY_VERSION)?;
    }
    if opts.locks.any() {
        s = lock_settings(s, opts, &keys, &uid, &xuid, &plan, step)?;
        step(Step::ChangeKeys);
    }
    s.change_own_key(keys.key(KeyNo::MASTER), KEY_VERSION)?;
    complete(
        card,
        journal,
        opts,
        Done {
            keys: &keys,
            uid: &uid,
            xuid: &xuid,
            plan: &plan,
            start,
            recovered: false,
            logged: false,
        },
        step,
    )
}

/// The batch's failed-authentication counter (`--failed-auth-limit`, SetConfiguration 0A),
/// in the key-0 session; nothing when the batch leaves the chip's setting. Reversible, so
/// not journaled as a step of its own: the batch's `batch_options` record holds the value.
fn failed_auth_limit<'c, T: Transport>(
    s: Session<'c, T>,
    opts: &EncodeOptions,
    step: &mut dyn FnMut(Step),
) -> Result<Session<'c, T>, ProvisionError> {
    match &opts.lifecycle.failed_auth {
        Some(c) => {
            step(Step::FailedAuthLimit);
            let s = s.set_failed_auth_counter(c)?;
            step(Step::WriteNdef);
            Ok(s)
        }
        None => Ok(s),
    }
}

/// Which key 0 opened the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key0 {
    /// The journaled (new) key 0: every step before ChangeKey 0 happened.
    Planned,
    /// The factory key 0.
    Factory,
}

/// The one "journaled key 0 or the factory key" step of finishing and resetting a tag: key
/// 0's version (GetKeyVersion, no authentication) picks the one key tried, then `then` runs in the session that opened (its
/// [`Session::mode`] says AES or LRP). Neither key opening it means the tag was changed
/// outside this tool.
///
/// `mode` is the mode the journal planned. A tag planned for LRP may still be AES (the
/// switch was not sent); keys change only after the switch, so such a tag has the factory
/// key 0, and one AES authentication with it comes first: an LRP tag refuses it at once
/// (919D, one exchange), and the LRP authentications follow.
pub fn with_key0<T: Transport, R>(
    card: &mut Card<T>,
    mode: SdmMode,
    planned: &AesKey,
    uid: &str,
    then: impl FnOnce(Session<'_, T>, Key0) -> Result<R, ProvisionError>,
) -> Result<R, ProvisionError> {
    let auth_failed = |e: &CardError| e.status() == Some(Sw::AuthenticationError);
    let unrecoverable = || ProvisionError::Unrecoverable {
        uid: uid.to_string(),
    };
    if mode == SdmMode::Lrp {
        match card.authenticate_ev2_first(0, &AesKey::FACTORY) {
            Ok(s) => return then(s, Key0::Factory),
            Err(e) if e.status() == Some(Sw::PermissionDenied) => {}
            // Still AES, but not with the factory key: changed outside this tool.
            Err(e) if auth_failed(&e) => return Err(unrecoverable()),
            Err(e) => return Err(e.into()),
        }
    }
    if !planned.is_factory() {
        // Key 0's version, readable without authentication, says which of the two keys the
        // journal points to it holds: only that one is tried, so finishing or resetting an
        // interrupted tag costs no failed authentication (each one counts on the chip and
        // can start its delay, 91AD). A version neither key has: changed outside this tool.
        match card.get_key_version(KeyNo::MASTER.get())? {
            KEY_VERSION => {
                return match card.authenticate_first(mode, 0, planned) {
                    Ok(s) => then(s, Key0::Planned),
                    Err(e) if auth_failed(&e) => Err(unrecoverable()),
                    Err(e) => Err(e.into()),
                }
            }
            0x00 => {}
            _ => return Err(unrecoverable()),
        }
    }
    match card.authenticate_first(mode, 0, &AesKey::FACTORY) {
        Ok(s) => then(s, Key0::Factory),
        Err(e) if auth_failed(&e) => Err(unrecoverable()),
        Err(e) => Err(e.into()),
    }
}

/// Finishes an interrupted tag, AES or LRP: [`with_key0`] finds the active key 0 (its
/// version says planned or factory), then the steps that did not happen are done, in the order of a
/// fresh tag (the LRP switch, if not made yet, before the SDM settings and the keys).
fn finish<T: Transport, J: JournalAccess>(
    card: &mut Card<T>,
    journal: &mut J,
    opts: &EncodeOptions,
    entry: &TagEntry,
    start: usize,
    step: &mut dyn FnMut(Step),
) -> Result<Outcome, ProvisionError> {
    let TagEntry { uid, xuid, lrp, .. } = entry;
    let keys = entry.keys()?;
    let mode = if *lrp { SdmMode::Lrp } else { SdmMode::Aes };
    let opts = &as_planned(opts, entry);
    let plan = plan_for(opts, xuid)?;
    step(Step::Authenticate);
    with_key0(card, mode, keys.key(KeyNo::MASTER), uid, |s, key0| {
        finish_in(s, key0, journal, opts, entry, &plan, false, step).map(|_| ())
    })?;
    complete(
        card,
        journal,
        opts,
        Done::recovered(entry, &plan, start)?,
        step,
    )
}

/// The steps of an interrupted tag that did not happen, in the session key 0 opened, in the
/// order of a fresh tag (the LRP switch, if not made yet, and Random ID before the SDM settings
/// and the keys). `random_shown`: the tag answered with a random ID already.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish_in<'c, T: Transport, J: JournalAccess>(
    s: Session<'c, T>,
    key0: Key0,
    journal: &mut J,
    opts: &EncodeOptions,
    entry: &TagEntry,
    plan: &NdefLayout,
    random_shown: bool,
    step: &mut dyn FnMut(Step),
) -> Result<&'c mut Card<T>, ProvisionError> {
    let TagEntry { uid, xuid, lrp, .. } = entry;
    let keys = entry.keys()?;
    let mode = if *lrp { SdmMode::Lrp } else { SdmMode::Aes };
    match key0 {
        Key0::Planned => {
            // Key 0 is changed last, so everything before it happened. Leave the session
            // (ISOSelectFile resets authentication) so the read-back is mirrored.
            let card = s.end();
            card.select_ndef_application()?;
            Ok(card)
        }
        Key0::Factory => {
            // Planned for LRP but still AES: the switch was not sent (it may have been
            // journaled); send it now, before the settings and the keys.
            let s = if s.mode() != mode {
                super::lrp::switch(s, journal, uid, step)?
            } else {
                s
            };
            // Sent (again, harmless: the bit stays set) unless the tag shows it already.
            let s = if (opts.lifecycle.random_uid || entry.random_id) && !random_shown {
                super::random_uid::switch_on(s, journal, uid, entry.random_id, step)?
            } else {
                s
            };
            // Sent again (the same value; the chip only keeps the last).
            let s = failed_auth_limit(s, opts, step)?;
            step(Step::WriteNdef);
            let (mut s, fs) = s.get_file_settings(2)?;
            // The last ChangeFileSettings (locks) was sent: keys 1–4 changed before it.
            let locked = opts.locks.any() && fs == opts.locks.apply(&plan.settings);
            if fs.sdm.is_none() {
                s = s.write_data(2, 0, &plan.file, CommMode::Plain)?;
                s = sdm_settings(s, opts, plan)?;
            } else if fs != plan.settings && !locked {
                // Settings of another template: not what this batch planned.
                return Err(ProvisionError::OtherBatch { uid: uid.clone() });
            }
            step(Step::ChangeKeys);
            for k in KeyNo::APP {
                let version;
                (s, version) = s.get_key_version(k.get())?;
                if version != KEY_VERSION {
                    s = s.change_key(k.get(), &AesKey::FACTORY, keys.key(k), KEY_VERSION)?;
                }
            }
            if opts.locks.any() && !locked {
                s = lock_settings(s, opts, keys, uid, xuid, plan, step)?;
                step(Step::ChangeKeys);
            }
            Ok(s.change_own_key(keys.key(KeyNo::MASTER), KEY_VERSION)?)
        }
    }
}

/// The options a journaled tag is finished with: the journal, not today's command line, says
/// which mode (AES or LRP) and which locks the tag was planned with.
fn as_planned(opts: &EncodeOptions, entry: &TagEntry) -> EncodeOptions {
    let mode = if entry.lrp {
        SdmMode::Lrp
    } else {
        SdmMode::Aes
    };
    EncodeOptions {
        template: opts.template.clone().with_mode(mode),
        locks: entry.locks,
        ..opts.clone()
    }
}

/// Finishes a journaled tag with Random ID on whose factory key 0 opened `s` (and GetCardUID
/// named): the missing steps in that same session, then the read-back.
pub(super) fn finish_revealed<T: Transport, J: JournalAccess>(
    s: Session<'_, T>,
    journal: &mut J,
    opts: &EncodeOptions,
    entry: &TagEntry,
    start: usize,
    step: &mut dyn FnMut(Step),
) -> Result<Outcome, ProvisionError> {
    let opts = &as_planned(opts, entry);
    let plan = plan_for(opts, &entry.xuid)?;
    let card = finish_in(s, Key0::Factory, journal, opts, entry, &plan, true, step)?;
    complete(
        card,
        journal,
        opts,
        Done::recovered(entry, &plan, start)?,
        step,
    )
}

/// Finishes a tag whose key 0 is changed (every step before it happened), found without
/// authenticating: its read-back, journaled.
pub(super) fn finish_changed<T: Transport, J: JournalAccess>(
    card: &mut Card<T>,
    journal: &mut J,
    opts: &EncodeOptions,
    entry: &TagEntry,
    start: usize,
    step: &mut dyn FnMut(Step),
) -> Result<Outcome, ProvisionError> {
    let opts = &as_planned(opts, entry);
    let plan = plan_for(opts, &entry.xuid)?;
    complete(
        card,
        journal,
        opts,
        Done::recovered(entry, &plan, start)?,
        step,
    )
}

/// The NDEF file's SDM settings (ChangeFileSettings); with `{tt}` in the template, first
/// enables TagTamper (SetConfiguration 07, permanent; one more APDU). Sent after the plan is
/// journaled and after the NDEF file is written.
fn sdm_settings<'c, T: Transport>(
    s: Session<'c, T>,
    opts: &EncodeOptions,
    plan: &NdefLayout,
) -> Result<Session<'c, T>, CardError> {
    let s = if opts.template.has(&Part::Tt) {
        s.enable_tag_tamper()?
    } else {
        s
    };
    s.change_file_settings(2, &plan.settings)
}

/// The last ChangeFileSettings, for a tag planned with locks (`--lock-ndef-permanently`,
/// `--freeze-settings`): sent after keys 1–4 changed and before key 0, so "key 0 is new"
/// still means every step before it happened, and a tag interrupted before it is finished
/// (or reset) as any other. First the session ends and the NDEF file is read back as a phone
/// reads it and verified with the new SDM keys (keys 1–4): a tag is never locked with a URL
/// that does not verify. Then key 0 (still factory) authenticates again and the settings go
/// with Write and ReadWrite (lock) and/or Change (freeze) access Fh: from then on WriteData
/// answers 919D (NT4H2421Gx §10.8.2 Table 83) and ChangeFileSettings 919D (§10.7.1 Table 71),
/// whatever key is authenticated. Five exchanges: ISOSelectFile, ReadData,
/// AuthenticateEV2First (or LRPFirst, 2), ChangeFileSettings.
fn lock_settings<'c, T: Transport>(
    s: Session<'c, T>,
    opts: &EncodeOptions,
    keys: &KeySet,
    uid: &str,
    xuid: &str,
    plan: &NdefLayout,
    step: &mut dyn FnMut(Step),
) -> Result<Session<'c, T>, ProvisionError> {
    step(Step::Lock);
    let mode = s.mode();
    let card = s.end();
    card.select_ndef_application()?;
    read_back(card, opts, keys, uid, xuid, plan)?;
    let s = card.authenticate_first(mode, 0, &AesKey::FACTORY)?;
    Ok(s.change_file_settings(2, &opts.locks.apply(&plan.settings))?)
}

/// After a WriteData refused with 919D: the NDEF file's Write and ReadWrite access are both
/// never (GetFileSettings, plain without authentication, one exchange).
fn locked_for_good<T: Transport>(card: &mut Card<T>) -> Result<bool, ProvisionError> {
    use crate::card::file_settings::Access;
    let fs = card.get_file_settings(2)?;
    Ok(fs.access.write == Access::Never && fs.access.read_write == Access::Never)
}

/// A tag whose five keys are changed, ready for its read-back.
struct Done<'a> {
    keys: &'a KeySet,
    uid: &'a str,
    xuid: &'a str,
    plan: &'a NdefLayout,
    start: usize,
    recovered: bool,
    /// `KeysChanged` is already in the journal.
    logged: bool,
}

impl<'a> Done<'a> {
    /// A journaled tag finished after an interruption, with its planned keys.
    fn recovered(
        entry: &'a TagEntry,
        plan: &'a NdefLayout,
        start: usize,
    ) -> Result<Done<'a>, ProvisionError> {
        Ok(Done {
            keys: entry.keys()?,
            uid: &entry.uid,
            xuid: &entry.xuid,
            plan,
            start,
            recovered: true,
            logged: entry.keys_changed,
        })
    }
}

/// Journals the key change, verifies the read-back and journals the tag as done.
fn complete<T: Transport, J: JournalAccess>(
    card: &mut Card<T>,
    journal: &mut J,
    opts: &EncodeOptions,
    d: Done<'_>,
    step: &mut dyn FnMut(Step),
) -> Result<Outcome, ProvisionError> {
    let (uid, xuid) = (d.uid.to_string(), d.xuid.to_string());
    if !d.logged {
        journal.with(|j| {
            j.append(Record::KeysChanged {
                uid: uid.clone(),
                time: now(),
            })
        })?;
    }
    step(Step::Verify);
    let read_ctr = read_back(card, opts, d.keys, &uid, &xuid, d.plan)?;
    journal.with(|j| {
        j.append(Record::Verified {
            uid: uid.clone(),
            xuid: xuid.clone(),
            read_ctr,
            time: now(),
        })
    })?;
    Ok(Outcome::Encoded {
        uid,
        xuid,
        read_ctr,
        exchanges: card.exchanges() - d.start,
        recovered: d.recovered,
    })
}
