//! The one rule for a folder's CORS origin: exactly what a browser sends in its `Origin`
//! header (`scheme://host[:port]`, RFC 6454), up to [`MAX_ORIGIN_LEN`] characters.

/// Longest CORS origin.
pub const MAX_ORIGIN_LEN: usize = 100;

/// Why a text is not an origin a browser sends ([`check_origin`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    /// Longer than [`MAX_ORIGIN_LEN`].
    #[error("longer than {MAX_ORIGIN_LEN} characters")]
    TooLong,
    /// Neither `https://` nor `http://`.
    #[error("it must start with https:// or http://")]
    Scheme,
    /// The scheme is not in lower case (the scheme, in lower case).
    #[error("browsers send the scheme in lower case ({scheme}://)")]
    SchemeCase {
        /// `https` or `http`.
        scheme: &'static str,
    },
    /// A trailing slash after the host.
    #[error("no trailing slash: browsers send {scheme}://{host} without it")]
    TrailingSlash {
        /// `https` or `http`.
        scheme: &'static str,
        /// The host (and port) before the slash.
        host: String,
    },
    /// A path, query or fragment after the host.
    #[error(
        "{rest:?} is a path, query or fragment; an Origin carries none (use {scheme}://{host})"
    )]
    Path {
        /// `https` or `http`.
        scheme: &'static str,
        /// The host (and port).
        host: String,
        /// What follows it.
        rest: String,
    },
    /// `user@` before the host.
    #[error("user info (user@) is not part of an origin")]
    UserInfo,
    /// A space or a non-ASCII character.
    #[error(
        "spaces and non-ASCII characters are not allowed (use the punycode xn-- form of a domain)"
    )]
    NotAscii,
    /// `[` without `]`.
    #[error("an IPv6 host needs its closing ]")]
    Ipv6Unclosed,
    /// A bracketed host that is not an IPv6 address in lower case.
    #[error("[{ip}] is not an IPv6 address in lower case")]
    Ipv6 {
        /// The text in brackets.
        ip: String,
    },
    /// Something other than `:port` after `[ipv6]`.
    #[error("{after:?} after the IPv6 host")]
    AfterIpv6 {
        /// What follows `]`.
        after: String,
    },
    /// No host.
    #[error("no host")]
    NoHost,
    /// An upper-case letter in the host (the host in lower case).
    #[error("browsers send the host in lower case ({lower})")]
    HostCase {
        /// The host, in lower case.
        lower: String,
    },
    /// A host that is not a host name.
    #[error("{host:?} is not a host name (letters, digits and -, in labels separated by dots)")]
    HostName {
        /// The host.
        host: String,
    },
    /// A port that is not 1 to 65535 written plainly.
    #[error("invalid port {port:?} (1 to 65535)")]
    Port {
        /// The port text.
        port: String,
    },
    /// The scheme's default port, which browsers leave out.
    #[error("browsers leave the default port out: use {scheme}://{host}")]
    DefaultPort {
        /// `https` or `http`.
        scheme: &'static str,
        /// The host without the port.
        host: String,
    },
}

/// Why `o` is not an origin a browser sends (`Origin: scheme://host[:port]`, RFC 6454): a
/// trailing slash or a path, a query, user info, an upper-case letter, an invalid or default
/// port would never equal the header, so the folder's CORS setting would never apply.
pub fn check_origin(o: &str) -> Result<(), OriginError> {
    if o.len() > MAX_ORIGIN_LEN {
        return Err(OriginError::TooLong);
    }
    let lower = o.to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("https://") {
        ("https", &o[8..])
    } else if lower.starts_with("http://") {
        ("http", &o[7..])
    } else {
        return Err(OriginError::Scheme);
    };
    if !o.starts_with(scheme) {
        return Err(OriginError::SchemeCase { scheme });
    }
    if let Some(i) = rest.find(['/', '?', '#']) {
        let host = rest[..i].to_string();
        return Err(if &rest[i..] == "/" {
            OriginError::TrailingSlash { scheme, host }
        } else {
            OriginError::Path {
                scheme,
                host,
                rest: rest[i..].to_string(),
            }
        });
    }
    if rest.contains('@') {
        return Err(OriginError::UserInfo);
    }
    if rest.bytes().any(|c| !c.is_ascii_graphic()) {
        return Err(OriginError::NotAscii);
    }
    // host, then an optional :port (an IPv6 host is in brackets).
    let (host, port) = if let Some(h) = rest.strip_prefix('[') {
        let Some((ip, after)) = h.split_once(']') else {
            return Err(OriginError::Ipv6Unclosed);
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() || ip.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(OriginError::Ipv6 { ip: ip.to_string() });
        }
        match after {
            "" => (ip, None),
            p => match p.strip_prefix(':') {
                Some(p) => (ip, Some(p)),
                None => {
                    return Err(OriginError::AfterIpv6 {
                        after: after.to_string(),
                    })
                }
            },
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if !host.contains(':') {
        if host.is_empty() {
            return Err(OriginError::NoHost);
        }
        if host.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(OriginError::HostCase {
                lower: host.to_ascii_lowercase(),
            });
        }
        let ok_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(ok_label) {
            return Err(OriginError::HostName {
                host: host.to_string(),
            });
        }
    }
    if let Some(p) = port {
        let n: u16 = match p.parse() {
            Ok(n) if n > 0 && !p.starts_with('0') && p.bytes().all(|c| c.is_ascii_digit()) => n,
            _ => {
                return Err(OriginError::Port {
                    port: p.to_string(),
                })
            }
        };
        if (scheme, n) == ("https", 443) || (scheme, n) == ("http", 80) {
            return Err(OriginError::DefaultPort {
                scheme,
                host: rest[..rest.len() - p.len() - 1].to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_errors_carry_the_parts() {
        assert_eq!(check_origin("https://shop.example.com:8443"), Ok(()));
        assert_eq!(
            check_origin("https://shop.example.com/"),
            Err(OriginError::TrailingSlash {
                scheme: "https",
                host: "shop.example.com".into()
            })
        );
        let e = check_origin("http://a.example/x?y").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#""/x?y" is a path, query or fragment; an Origin carries none (use http://a.example)"#
        );
        assert!(matches!(e, OriginError::Path { rest, .. } if rest == "/x?y"));
        assert_eq!(
            check_origin("https://a.example:443"),
            Err(OriginError::DefaultPort {
                scheme: "https",
                host: "a.example".into()
            })
        );
        assert_eq!(
            check_origin("https://Shop.example"),
            Err(OriginError::HostCase {
                lower: "shop.example".into()
            })
        );
        assert_eq!(
            check_origin("https://a.example:0"),
            Err(OriginError::Port { port: "0".into() })
        );
        assert_eq!(check_origin("ftp://a"), Err(OriginError::Scheme));
        assert_eq!(
            check_origin("HTTPS://a"),
            Err(OriginError::SchemeCase { scheme: "https" })
        );
    }
}
