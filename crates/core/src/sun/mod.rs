//! SUN (Secure Unique NFC) messages: URL templates, and checking a scanned URL with the keys.

pub mod params;
pub mod template;
pub mod verify;

pub use params::ParamsError;
pub use template::{Template, TemplateError, DEFAULT_TEMPLATE};
pub use verify::{parse_url, verify, verify_as, ScannedUrl, SunError, SunKeys, TtStatus, Verified};
