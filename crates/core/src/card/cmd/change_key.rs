//! ChangeKey (INS `C4`). CommMode: Full, authenticated with the application master key (key 0).
//! NT4H2421Gx §10.6.1; AN12196 Tables 25 and 26.
//!
//! CmdHeader = KeyNo (plain, MACed). CmdData (encrypted):
//! - another key than the authenticated one: `(NewKey ⊕ OldKey) || KeyVer || CRC32NK(NewKey)`;
//!   the answer carries a MACt;
//! - the authenticated key itself: `NewKey || KeyVer`; the answer is a bare `9100` and the
//!   session ends, so this call returns the [`Card`], not a session.

use zeroize::Zeroizing;

use crate::card::cmd::authenticate::check_key_no;
use crate::card::session::{Reply, Spec};
use crate::card::{Card, CardError, CommMode, Session};
use crate::crypto::{crc32nk, AesKey};
use crate::transport::Transport;

const NAME: &str = "ChangeKey";
const INS: u8 = 0xC4;

/// The plaintext CmdData for changing a key other than the authenticated one.
pub fn key_data_other(new: &AesKey, old: &AesKey, version: u8) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(21));
    v.extend(
        new.as_bytes()
            .iter()
            .zip(old.as_bytes())
            .map(|(a, b)| a ^ b),
    );
    v.push(version);
    v.extend_from_slice(&crc32nk(new.as_bytes()));
    v
}

/// The plaintext CmdData for changing the authenticated key.
pub fn key_data_same(new: &AesKey, version: u8) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(17));
    v.extend_from_slice(new.as_bytes());
    v.push(version);
    v
}

impl<'c, T: Transport> Session<'c, T> {
    /// Changes key `key_no` (not the authenticated key) from `old` to `new` with version `version`.
    pub fn change_key(
        mut self,
        key_no: u8,
        old: &AesKey,
        new: &AesKey,
        version: u8,
    ) -> Result<Self, CardError> {
        check_key_no(key_no)?;
        if key_no == self.key_no {
            return Err(CardError::InvalidArgument(format!(
                "key {key_no} is the authenticated key: use change_own_key, which ends the session"
            )));
        }
        let data = key_data_other(new, old, version);
        let r = self.exchange(
            Spec {
                name: NAME,
                ins: INS,
                mode: CommMode::Full,
                reply: Reply::AsCommand,
                sensitive: true,
            },
            &[key_no],
            &data,
        )?;
        crate::card::expect_no_data(NAME, &r)?;
        Ok(self)
    }

    /// Changes the key this session authenticated with. The chip ends the session: the card
    /// comes back unauthenticated.
    pub fn change_own_key(
        mut self,
        new: &AesKey,
        version: u8,
    ) -> Result<&'c mut Card<T>, CardError> {
        let key_no = self.key_no;
        let data = key_data_same(new, version);
        self.exchange(
            Spec {
                name: NAME,
                ins: INS,
                mode: CommMode::Full,
                reply: Reply::BareStatus,
                sensitive: true,
            },
            &[key_no],
            &data,
        )?;
        Ok(self.end())
    }
}
