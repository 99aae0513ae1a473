//! Every leaf command's `--help` has examples, every option has help text, and every example
//! parses with the real command tree (a wrong flag in an example fails here).
//! `tests/help_examples.rs` runs the examples that can run here for real.

use clap::CommandFactory;

/// Every command of the tree with its path (`["sim", "tap"]`), depth first, hidden ones left out.
fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    out.push((path.clone(), cmd.clone()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        walk(sub, p, out);
    }
}

fn commands() -> Vec<(Vec<String>, clap::Command)> {
    let mut out = Vec::new();
    walk(&super::Cli::command(), Vec::new(), &mut out);
    out
}

/// The example command lines of a command's help: the lines of its `Examples` section that
/// start with `tag424` (or `sudo tag424`), and `$(tag424 …)` inside other lines.
pub fn examples(cmd: &clap::Command) -> Vec<String> {
    let Some(after) = cmd.get_after_help().map(|s| s.to_string()) else {
        return Vec::new();
    };
    let mut lines = after.lines();
    if !lines.next().is_some_and(|l| l.starts_with("Examples")) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for l in lines {
        let l = l.trim();
        let l = l.strip_prefix("sudo ").unwrap_or(l);
        if l.starts_with("tag424 ") || l == "tag424" {
            out.push(l.to_string());
        } else if let Some(i) = l.find("$(tag424 ") {
            out.push(l[i + 2..].to_string());
        }
    }
    out
}

/// Splits an example line into words as a shell would, up to the first unquoted `#`, `|`,
/// `>`, `<`, `;`, `&` or `)` (no expansion).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    w.push(d);
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        d => w.push(d),
                    }
                }
            }
            '#' | '|' | '>' | '<' | ';' | '&' | ')' if cur.is_none() => break,
            c if c.is_whitespace() => out.extend(cur.take()),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    out
}

#[test]
fn every_leaf_command_has_examples_and_every_option_help() {
    let mut missing = Vec::new();
    let mut leaves = 0;
    for (path, cmd) in commands() {
        let name = format!("tag424 {}", path.join(" "));
        if cmd.get_about().is_none() && cmd.get_long_about().is_none() && !path.is_empty() {
            missing.push(format!("{name}: no description"));
        }
        for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let help = a.get_help().or(a.get_long_help()).map(|h| h.to_string());
            if help.is_none_or(|h| h.trim().is_empty()) {
                missing.push(format!("{name}: {} has no help text", a.get_id()));
            }
        }
        if cmd.has_subcommands() {
            continue;
        }
        leaves += 1;
        let ex = examples(&cmd);
        let wanted = format!("tag424 {}", path.join(" "));
        if !ex.iter().any(|e| words(e).join(" ").contains(&wanted)) {
            missing.push(format!("{name}: --help shows no example of it (an `Examples:` after_help with a `{wanted} …` line)"));
        }
    }
    assert!(leaves >= 20, "only {leaves} leaf commands found");
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn every_help_example_parses() {
    let mut bad = Vec::new();
    let mut n = 0;
    for (_, cmd) in commands() {
        for e in examples(&cmd) {
            n += 1;
            let w = words(&e);
            if let Err(err) = super::Cli::command().try_get_matches_from(&w) {
                bad.push(format!("{e}\n  {}", err.render()));
            }
        }
    }
    assert!(n >= 40, "only {n} examples found");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn words_split_as_a_shell_does() {
    assert_eq!(
        words("tag424 url-check --url 'a?x={xuid}&n' --json # note"),
        ["tag424", "url-check", "--url", "a?x={xuid}&n", "--json"]
    );
    assert_eq!(
        words("tag424 completions bash | sudo tee x"),
        ["tag424", "completions", "bash"]
    );
    assert_eq!(
        words("tag424 sim tap --dir tags XUID | cut -d? -f2)\""),
        ["tag424", "sim", "tap", "--dir", "tags", "XUID"]
    );
    assert_eq!(words(r#"tag424 a "b c\"d""#), ["tag424", "a", "b c\"d"]);
}
