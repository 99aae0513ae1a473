//! The read-back: the NDEF file read as a phone reads it, and its SUN message verified with
//! the tag's new keys before key 0 changes.

use crate::card::Card;
use crate::sun::{self, SunKeys};
use crate::transport::Transport;

use super::{EncodeOptions, ProvisionError, ReadBackError};
use crate::keys::KeySet;
use crate::layout::{url_from_ndef, NdefLayout};

/// Reads the NDEF file as a phone does (unauthenticated, so the chip mirrors) and verifies
/// the SUN message with the new keys. Returns the counter the chip mirrored.
pub(super) fn read_back<T: Transport>(
    card: &mut Card<T>,
    opts: &EncodeOptions,
    keys: &KeySet,
    uid: &str,
    xuid: &str,
    plan: &NdefLayout,
) -> Result<u32, ProvisionError> {
    let file = card.read_data(2, 0, plan.file.len())?;
    let url = url_from_ndef(&file).ok_or_else(|| ProvisionError::Verification {
        uid: uid.to_string(),
        why: ReadBackError::NoUri,
    })?;
    check_url(opts, keys, uid, xuid, &url)
}

/// Verifies a SUN URL read from the tag with its planned keys, UID and tag code; the
/// counter it carries.
pub(crate) fn check_url(
    opts: &EncodeOptions,
    keys: &KeySet,
    uid: &str,
    xuid: &str,
    url: &str,
) -> Result<u32, ProvisionError> {
    let fail = |why: ReadBackError| ProvisionError::Verification {
        uid: uid.to_string(),
        why,
    };
    let scan = sun::parse_url(&opts.template, url).map_err(|e| fail(e.into()))?;
    let sun_keys = SunKeys {
        file_read: keys.sdm_file_read().clone(),
        meta_read: Some(keys.sdm_meta_read().clone()),
    };
    let v =
        sun::verify_as(&scan, &sun_keys, Some(opts.template.mode())).map_err(|e| fail(e.into()))?;
    if !v.genuine {
        return Err(fail(ReadBackError::NotGenuine(
            v.reason.unwrap_or_default(),
        )));
    }
    if v.xuid.as_deref().is_some_and(|x| x != xuid) {
        return Err(fail(ReadBackError::OtherTagCode {
            found: v.xuid,
            expected: xuid.to_string(),
        }));
    }
    if let Some(u) = v.uid {
        if hex::encode_upper(u) != uid {
            return Err(fail(ReadBackError::OtherUid));
        }
    }
    v.read_ctr.ok_or_else(|| fail(ReadBackError::NoCounter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sun::Template;

    #[test]
    fn a_read_back_that_does_not_verify_says_why_in_a_typed_error() {
        let opts = EncodeOptions {
            template: Template::default(),
            trust_simulator: true,
            master: None,
            locks: Default::default(),
            lifecycle: Default::default(),
        };
        let keys = KeySet::random();
        let uid = "04112233445566";
        let why = |url: &str| match check_url(&opts, &keys, uid, "q8w3sbcz", url) {
            Err(ProvisionError::Verification { uid: u, why }) if u == uid => why,
            other => panic!("{other:?}"),
        };
        assert!(matches!(
            why("https://elsewhere.example/t?x=q8w3sbcz"),
            ReadBackError::Sun(_)
        ));
        let e = why("https://yourdomain.com/auth?x=q8w3sbcz&n=000001&e=0000000000000000");
        assert!(matches!(e, ReadBackError::NotGenuine(_)), "{e:?}");
        let text = ProvisionError::Verification {
            uid: uid.into(),
            why: e,
        }
        .to_string();
        assert!(
            text.starts_with("tag 04112233445566: the read-back SUN message does not verify: "),
            "{text}"
        );
    }
}
