//! Where a PostgreSQL password comes from: never the URL (a command line is visible to every
//! user of the machine, and the URL is printed), but `PGPASSWORD` or a libpq-style password
//! file (`PGPASSFILE`, else `~/.pgpass`), as `psql` and every libpq client read them.
//!
//! The file's lines are `hostname:port:database:username:password`; `*` matches anything,
//! `\:` and `\\` escape; `#` starts a comment line; the first matching line wins. Like libpq,
//! a file that its group or others can read is ignored (with a warning naming the fix).

use std::path::{Path, PathBuf};

/// The password for `host:port/db` as `user`, from the environment or the password file.
/// `Err` is a warning to show (e.g. a file others can read); the lookup then goes on as if
/// the file did not exist.
pub fn lookup(host: &str, port: u16, db: &str, user: &str) -> (Option<String>, Option<String>) {
    if let Ok(p) = std::env::var("PGPASSWORD") {
        if !p.is_empty() {
            return (Some(p), None);
        }
    }
    let Some(file) = passfile() else {
        return (None, None);
    };
    let Ok(meta) = std::fs::metadata(&file) else {
        return (None, None);
    };
    if crate::private_fs::others_can_access(&meta) {
        return (
            None,
            Some(format!(
                "password file {} is readable by others and was ignored: chmod 0600 {}",
                file.display(),
                file.display()
            )),
        );
    }
    match std::fs::read_to_string(&file) {
        Ok(text) => (find(&text, host, port, db, user), None),
        Err(e) => (None, Some(format!("password file {}: {e}", file.display()))),
    }
}

fn passfile() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass"))
}

/// Splits a line at unescaped `:` and unescapes `\:` and `\\`.
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap_or(&mut String::new()).push(n);
                }
            }
            ':' => out.push(String::new()),
            c => {
                if let Some(l) = out.last_mut() {
                    l.push(c)
                }
            }
        }
    }
    out
}

/// The password of the first line of `text` that matches.
pub fn find(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    // libpq matches a Unix-socket connection to the default socket folder as "localhost".
    let host_matches =
        |h: &str| h == "*" || h == host || (host.starts_with('/') && h == "localhost");
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f = fields(line);
        if f.len() < 5 {
            continue;
        }
        let ok = |v: &str, want: &str| v == "*" || v == want;
        if host_matches(&f[0]) && ok(&f[1], &port) && ok(&f[2], db) && ok(&f[3], user) {
            // A password may itself hold unescaped colons.
            return Some(f[4..].join(":"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    db.example:5432:other:app:nope\n\
                    db.example:5432:tags:app:s3cr\\:et\\\\x\n\
                    *:*:*:app:fallback\n";
        assert_eq!(
            find(text, "db.example", 5432, "tags", "app").as_deref(),
            Some("s3cr:et\\x")
        );
        assert_eq!(
            find(text, "10.0.0.2", 6000, "x", "app").as_deref(),
            Some("fallback")
        );
        assert_eq!(find(text, "db.example", 5432, "tags", "root"), None);
        assert_eq!(
            find("localhost:5432:d:u:pw\n", "/run/postgresql", 5432, "d", "u").as_deref(),
            Some("pw")
        );
    }
}
