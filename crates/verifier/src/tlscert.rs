//! The certificate of `tag424 serve --tls-self-signed`: made once for the names a phone
//! reaches the verifier by, kept owner-only beside the database (it holds the private key) and
//! reused at every start, so a phone warns about it once. Made again only when the names
//! change (another listen address), which the start line says.
//!
//! The file holds one line naming the certificate's names, then the private key (PKCS#8) and
//! the certificate, in PEM.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::server::ServerError;
use crate::private_fs;

/// The first line of the file, before the names (comma separated).
const NAMES_LINE: &str = "# tag424 self-signed certificate for: ";

/// What happened to the kept certificate at this start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// No file yet: made now and kept.
    New,
    /// The kept one, for the same names.
    Reused,
    /// The kept one was for other names (another listen address): made again and kept.
    Replaced,
}

/// A self-signed certificate and its key, in PEM.
pub struct SelfSigned {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: Zeroizing<String>,
}

/// The file a database's self-signed certificate is kept in: beside it, named after it
/// (`tag424-verifier.db` → `tag424-verifier.db.tls.pem`).
pub fn kept_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".tls.pem");
    db.with_file_name(name)
}

/// The subject's common name: tag424 and the host a phone opens (the first name that is not
/// `localhost` or a loopback address, else `localhost`).
pub fn common_name(names: &[String]) -> String {
    let host = names
        .iter()
        .find(|n| {
            n.as_str() != "localhost"
                && !n
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
        .or(names.first())
        .map_or("localhost", String::as_str);
    format!("tag424 serve {host}")
}

/// Makes a certificate for `names` (subject alternative names), its subject naming tag424
/// and the host.
pub fn make(names: &[String]) -> Result<SelfSigned, ServerError> {
    let tls = |e: rcgen::Error| ServerError::Tls(e.to_string());
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(tls)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, common_name(names));
    dn.push(rcgen::DnType::OrganizationName, "tag424");
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let cert = params.self_signed(&key).map_err(tls)?;
    Ok(SelfSigned {
        cert_pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ServerError + '_ {
    move |e| ServerError::Pem {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

/// Refuses a kept file that other users can read or write (its key may be known).
fn check_private(path: &Path, file: &std::fs::File) -> Result<(), ServerError> {
    // The one owner-only rule (yours, no group or other bits), on the file opened.
    let m = file.metadata().map_err(io(path))?;
    private_fs::check(path, &m).map_err(|e| ServerError::Pem {
        path: path.to_path_buf(),
        what: format!(
            "holds the certificate's private key and is not owner-only ({e}); delete it (a new certificate is made, \
             phones warn once more), or {}",
            e.help()
        ),
    })
}

/// The names a kept file was made for.
fn names_of(text: &str) -> Option<Vec<String>> {
    let line = text.lines().next()?.strip_prefix(NAMES_LINE)?;
    Some(line.split(", ").map(str::to_string).collect())
}

fn same_names(a: &[String], b: &[String]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    a == b
}

/// The certificate kept at `path` when it was made for `names`, else a new one written there
/// (owner-only, atomically). Returns it with what happened.
pub fn kept(path: &Path, names: &[String]) -> Result<(SelfSigned, Made), ServerError> {
    let bad = |what: &str| ServerError::Pem {
        path: path.to_path_buf(),
        what: format!("{what}: delete it, and a new certificate is made (phones warn once more)"),
    };
    let made = match private_fs::options().read(true).open(path) {
        Ok(mut f) => {
            check_private(path, &f)?;
            let mut text = Zeroizing::new(String::new());
            std::io::Read::read_to_string(&mut f, &mut text).map_err(io(path))?;
            let stored = names_of(&text).ok_or_else(|| bad("not a certificate tag424 made"))?;
            if same_names(&stored, names) {
                let (mut key, mut cert) = (None, None);
                let mut section: Option<&str> = None;
                let mut buf = Zeroizing::new(String::new());
                for line in text.lines() {
                    if let Some(l) = line.strip_prefix("-----BEGIN ") {
                        section = Some(l);
                        buf.clear();
                    }
                    if section.is_some() {
                        buf.push_str(line);
                        buf.push('\n');
                    }
                    if line.starts_with("-----END ") {
                        match section {
                            Some("PRIVATE KEY-----") => key = Some(buf.clone()),
                            Some("CERTIFICATE-----") => cert = Some(buf.to_string()),
                            _ => {}
                        }
                        section = None;
                    }
                }
                return match (key, cert) {
                    (Some(key_pem), Some(cert_pem)) => {
                        Ok((SelfSigned { cert_pem, key_pem }, Made::Reused))
                    }
                    _ => Err(bad("has no PRIVATE KEY and CERTIFICATE")),
                };
            }
            Made::Replaced
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Made::New,
        Err(e) => return Err(io(path)(e)),
    };
    let s = make(names)?;
    let text = Zeroizing::new(format!(
        "{NAMES_LINE}{}\n{}{}",
        names.join(", "),
        s.key_pem.as_str(),
        s.cert_pem
    ));
    private_fs::write_atomic(path, text.as_bytes()).map_err(io(path))?;
    Ok((s, made))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_owner_only_reused_for_the_same_names_and_replaced_for_others() {
        let d = tempfile::tempdir().unwrap();
        let p = kept_path(&d.path().join("v.db"));
        assert!(p.ends_with("v.db.tls.pem"));
        let names = vec!["localhost".to_string(), "192.0.2.2".to_string()];
        let (a, made) = kept(&p, &names).unwrap();
        assert_eq!(made, Made::New);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (b, made) = kept(&p, &["192.0.2.2".into(), "localhost".into()]).unwrap();
        assert_eq!(made, Made::Reused);
        assert_eq!(a.cert_pem, b.cert_pem);
        assert_eq!(a.key_pem.as_str(), b.key_pem.as_str());
        let (c, made) = kept(&p, &["localhost".to_string()]).unwrap();
        assert_eq!(made, Made::Replaced);
        assert_ne!(a.cert_pem, c.cert_pem);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = kept(&p, &["localhost".to_string()])
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("owner-only"), "{e}");
        }
    }

    #[test]
    fn the_subject_names_tag424_and_the_host() {
        let names = ["localhost", "127.0.0.1", "192.0.2.2"].map(String::from);
        assert_eq!(common_name(&names), "tag424 serve 192.0.2.2");
        assert_eq!(common_name(&names[..2]), "tag424 serve localhost");
    }
}
