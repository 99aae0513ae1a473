//! Profiles: a station's usual options in a TOML file, so the operator does not retype them.
//!
//! A profile is `tag424.toml` in the working folder, or `--profile NAME` (also
//! `TAG424_PROFILE`) for `CONFIG/tag424/profiles/NAME.toml` in the user's config folder. Its
//! keys are the commands' own long options, so a profile can set exactly what the command line
//! can and is checked against the same clap definitions: top-level keys apply to every command
//! that has that option, a `[batch]` (or `[encode]`, …) table to that command only and wins
//! over the top level. The command line wins over the environment, which wins over the
//! profile, which wins over the built-in default. A profile's options become ordinary
//! arguments before clap parses them, so validation, conflicts and `--help` stay in one place.
//! Which options the user gave (and which the environment sets) is clap's own reading of the
//! command line (`ArgMatches::value_source` of a first, error-tolerant parse), not a scan of
//! argv.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches};

use super::{print_json, say, CliError, FORMAT_VERSION};

/// The file name looked for in the working folder.
pub const LOCAL_FILE: &str = "tag424.toml";

/// `tag424 profile …`
#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// Print the effective settings: each option, its value and where it comes from.
    #[command(after_help = "Examples:
  tag424 profile show                                 # ./tag424.toml, if there is one
  tag424 --profile line1 profile show --command batch # CONFIG/tag424/profiles/line1.toml")]
    Show(ShowArgs),
    /// Print where profiles are looked for.
    #[command(after_help = "Examples:
  tag424 profile path")]
    Path,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Show this command's settings (default: every command the profile sets, and batch).
    #[arg(long, value_name = "COMMAND")]
    pub command: Option<String>,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// A profile file, parsed.
#[derive(Debug, Clone)]
pub struct Profile {
    pub path: PathBuf,
    table: toml::Table,
}

/// One option set by a profile, as arguments for its command.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    long: String,
    values: Vec<String>,
    /// `true` for a flag (no value); `values` is then empty.
    flag: bool,
    /// Where it is set, for messages: "tag424.toml: [batch] `url` = \"…\"".
    origin: String,
}

fn profile_error(message: String, help: &str) -> CliError {
    CliError {
        code: 2,
        message,
        help: Some(help.to_string()),
    }
}

/// Where named profiles live: `CONFIG/tag424/profiles` (Linux `~/.config`, or
/// `$XDG_CONFIG_HOME`; macOS `~/Library/Application Support`; Windows `%APPDATA%`).
pub fn profiles_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("tag424").join("profiles"))
}

/// What the user's own command line and environment set, as clap resolves them: the command
/// line parsed once before the profile is applied, with errors tolerated (a profile may supply
/// an option the command requires; the real parse after reports the user's mistakes), and
/// `--help`, `--version` and `help …` read as plain words (so `--no-profile` after them still
/// counts, and the profile is chosen and checked as for any other run).
/// `ArgMatches::value_source` then says what came from the command line or the environment.
fn user_matches(args: &[OsString], root: &clap::Command) -> ArgMatches {
    let plain = |id: &'static str, short: char, long: &'static str| {
        clap::Arg::new(id)
            .short(short)
            .long(long)
            .action(ArgAction::SetTrue)
            .global(true)
    };
    root.clone()
        .ignore_errors(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .arg(plain("help-flag", 'h', "help"))
        .arg(plain("version-flag", 'V', "version"))
        .subcommand(clap::Command::new("help").arg(clap::Arg::new("topic").num_args(0..)))
        .try_get_matches_from(args)
        .unwrap_or_default()
}

/// `id` was given on the command line (not the environment, not a default).
fn on_command_line(m: &ArgMatches, id: &str) -> bool {
    m.value_source(id) == Some(ValueSource::CommandLine)
}

/// `id` is set by its environment variable. An empty variable sets nothing (clap would read
/// it as an empty value): the profile or the default applies, as the docs say.
fn from_environment(m: &ArgMatches, id: &str) -> bool {
    m.value_source(id) == Some(ValueSource::EnvVariable)
        && m.get_raw(id).is_some_and(|mut v| v.any(|x| !x.is_empty()))
}

/// What the command line says about profiles: `--profile NAME` (else `TAG424_PROFILE`),
/// `--no-profile`.
struct Choice {
    name: Option<String>,
    none: bool,
}

fn choice(user: &ArgMatches) -> Choice {
    let name = if on_command_line(user, "profile") {
        user.get_one::<String>("profile").cloned()
    } else {
        std::env::var("TAG424_PROFILE")
            .ok()
            .filter(|v| !v.is_empty())
    };
    Choice {
        name,
        none: on_command_line(user, "no_profile"),
    }
}

impl Profile {
    /// The profile this run uses: `--profile NAME`, else `./tag424.toml`, else none.
    fn find(user: &ArgMatches) -> Result<Option<Profile>, CliError> {
        let c = choice(user);
        if c.none {
            return Ok(None);
        }
        if let Some(name) = c.name {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return Err(profile_error(
                    format!("--profile {name:?}: a profile name is letters, digits, - and _"),
                    "name a file CONFIG/tag424/profiles/NAME.toml without its folder and .toml (`tag424 profile path` shows the folder)",
                ));
            }
            let Some(dir) = profiles_dir() else {
                return Err(profile_error(
                    format!("--profile {name}: this system has no user config folder"),
                    "put the settings in tag424.toml in the working folder instead",
                ));
            };
            let path = dir.join(format!("{name}.toml"));
            if !path.exists() {
                let known = list(&dir);
                return Err(profile_error(
                    format!("no profile {name}: {} does not exist", path.display()),
                    &if known.is_empty() {
                        format!(
                            "create {} (see docs/operator-guide.md, Profiles)",
                            path.display()
                        )
                    } else {
                        format!("profiles there: {}", known.join(", "))
                    },
                ));
            }
            return Profile::load(&path).map(Some);
        }
        let local = PathBuf::from(LOCAL_FILE);
        if local.is_file() {
            return Profile::load(&local).map(Some);
        }
        Ok(None)
    }

    /// Reads and parses a profile file (not yet checked against the commands).
    pub fn load(path: &Path) -> Result<Profile, CliError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            profile_error(
                format!("cannot read the profile {}: {e}", path.display()),
                "fix its permissions, or run with --no-profile",
            )
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            profile_error(
                format!("profile {}: {e}", path.display()),
                "fix the file (TOML: key = \"value\", [batch] sections), or run with --no-profile",
            )
        })?;
        Ok(Profile {
            path: path.to_path_buf(),
            table,
        })
    }

    /// The settings for `command`, every key checked: top-level keys the command has, then its
    /// own table's (which win).
    fn settings_for(&self, command: &clap::Command) -> Result<Vec<Setting>, CliError> {
        let mut out: Vec<Setting> = Vec::new();
        let mut add = |s: Setting| {
            out.retain(|o| o.long != s.long);
            out.push(s);
        };
        for (key, value) in &self.table {
            if value.is_table() {
                continue;
            }
            if let Some(arg) = find_arg(command, key) {
                let mut s = self.setting(command.get_name(), arg, key, value)?;
                s.origin = format!("{}: `{key}` = {value}", self.path.display());
                add(s);
            }
        }
        if let Some(toml::Value::Table(own)) = self.table.get(command.get_name()) {
            for (key, value) in own {
                let arg = find_arg(command, key).ok_or_else(|| self.unknown(command, key))?;
                let mut s = self.setting(command.get_name(), arg, key, value)?;
                s.origin = format!(
                    "{}: [{}] `{key}` = {value}",
                    self.path.display(),
                    command.get_name()
                );
                add(s);
            }
        }
        Ok(out)
    }

    /// Every section names a command and every key an option of it (top-level keys: of at
    /// least one command), so a typo is an error rather than a setting silently ignored.
    fn check(&self, root: &clap::Command) -> Result<(), CliError> {
        for (key, value) in &self.table {
            match value {
                toml::Value::Table(own) => {
                    let cmd = settable_commands(root)
                        .find(|c| c.get_name() == key)
                        .ok_or_else(|| {
                            profile_error(
                                format!(
                                    "profile {}: [{key}] is not a command",
                                    self.path.display()
                                ),
                                &format!(
                                    "sections name commands: {}",
                                    settable_commands(root)
                                        .map(|c| c.get_name().to_string())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                        })?;
                    for (k, v) in own {
                        let arg = find_arg(cmd, k).ok_or_else(|| self.unknown(cmd, k))?;
                        self.setting(key, arg, k, v)?;
                    }
                }
                _ => {
                    let mut found = false;
                    for cmd in settable_commands(root) {
                        if let Some(arg) = find_arg(cmd, key) {
                            self.setting(cmd.get_name(), arg, key, value)?;
                            found = true;
                        }
                    }
                    if !found {
                        return Err(profile_error(
                            format!("profile {}: no command has an option --{key}", self.path.display()),
                            "keys are the commands' long options without the dashes, e.g. reader = \"0\"; see `tag424 COMMAND --help`",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn unknown(&self, cmd: &clap::Command, key: &str) -> CliError {
        let options: Vec<String> = cmd
            .get_arguments()
            .filter(|a| settable(a))
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        profile_error(
            format!(
                "profile {}: `{}` has no option --{key}",
                self.path.display(),
                cmd.get_name()
            ),
            &format!("its options: {}", options.join(", ")),
        )
    }

    /// A TOML value as arguments for `arg`.
    fn setting(
        &self,
        command: &str,
        arg: &clap::Arg,
        key: &str,
        value: &toml::Value,
    ) -> Result<Setting, CliError> {
        let long = arg.get_long().unwrap_or(key).to_string();
        let bad = |what: &str| {
            profile_error(
                format!(
                    "profile {}: {command} --{long}: {what}",
                    self.path.display()
                ),
                "fix the value in the profile, or give the option on the command line",
            )
        };
        if arg.is_hide_env_values_set() {
            return Err(profile_error(
                format!(
                    "profile {}: --{long} holds a key; keys never go in a profile",
                    self.path.display()
                ),
                "point the profile at a key file instead (e.g. master-key-file = \"/secure/master.key\")",
            ));
        }
        // Irreversible options are asked for, and confirmed, on each run's command line.
        if long == "yes-irreversible"
            || tag424::provision::irreversible::ALL
                .iter()
                .any(|o| o.flag.strip_prefix("--") == Some(long.as_str()))
        {
            return Err(profile_error(
                format!(
                    "profile {}: --{long} changes tags for good; a profile never applies it",
                    self.path.display()
                ),
                "remove it from the profile and give it on the command line of the batch that needs it",
            ));
        }
        let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
        if !takes_value {
            return match value {
                toml::Value::Boolean(b) => Ok(Setting {
                    long,
                    values: Vec::new(),
                    flag: *b,
                    origin: String::new(),
                }),
                _ => Err(bad("is a switch: write true or false")),
            };
        }
        let scalar = |v: &toml::Value| -> Result<String, CliError> {
            match v {
                toml::Value::String(s) => Ok(expand(s)),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                _ => Err(bad("write a string or a number")),
            }
        };
        let values = match value {
            toml::Value::Array(items) => {
                if !matches!(arg.get_action(), ArgAction::Append) {
                    return Err(bad("takes one value, not a list"));
                }
                items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?
            }
            v => vec![scalar(v)?],
        };
        Ok(Setting {
            long,
            values,
            flag: false,
            origin: String::new(),
        })
    }
}

/// `{date}` in a value becomes today's date (UTC, YYYY-MM-DD): `out = "batch-{date}"`.
fn expand(s: &str) -> String {
    if !s.contains("{date}") {
        return s.to_string();
    }
    let now = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    s.replace("{date}", &now[..10])
}

fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension()? == "toml")
                        .then(|| p.file_stem()?.to_str().map(str::to_string))?
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Commands whose options a profile may set: visible, without subcommands of their own.
fn settable_commands(root: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    root.get_subcommands()
        .filter(|c| !c.is_hide_set() && !c.has_subcommands() && c.get_name() != "help")
}

/// An option a profile may set: a visible long option other than help, version and the
/// profile choice itself.
fn settable(a: &clap::Arg) -> bool {
    !a.is_hide_set()
        && !a.is_positional()
        && !a.is_global_set()
        && !matches!(
            a.get_action(),
            ArgAction::Help | ArgAction::HelpLong | ArgAction::HelpShort | ArgAction::Version
        )
        && a.get_long().is_some()
}

fn find_arg<'c>(cmd: &'c clap::Command, key: &str) -> Option<&'c clap::Arg> {
    let key = key.replace('_', "-");
    cmd.get_arguments()
        .filter(|a| settable(a))
        .find(|a| a.get_long() == Some(key.as_str()))
}

/// Index of the command's name in `args` (skipping the top-level options), if any.
fn command_index(args: &[OsString]) -> Option<usize> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--profile" {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return Some(i);
        }
    }
    None
}

/// An option the profile added to the command line, and where the profile sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The long option, without dashes.
    pub long: String,
    /// "tag424.toml: `reader` = \"0\"" (or "… [batch] `url` = …").
    pub origin: String,
}

/// The command line with the profile's settings added, what was added, and the profile used.
pub type WithProfile = (Vec<OsString>, Vec<Applied>, Option<Profile>);

/// The command line with the profile's settings for its command added (the ones the user did
/// not give and the environment does not set), what was added, and the profile used.
pub fn apply(args: Vec<OsString>, root: &clap::Command) -> Result<WithProfile, CliError> {
    let user = user_matches(&args, root);
    match Profile::find(&user)? {
        Some(p) => {
            let (args, applied) = p.apply_to(args, root, &user)?;
            Ok((args, applied, Some(p)))
        }
        None => Ok((args, Vec::new(), None)),
    }
}

/// An error about an option the profile set names the profile file and key, and says that
/// the fix goes there: "tag424.toml: `reader` = \"x\": --reader x: …". An error mentions its
/// option as `--LONG` (the convention of every message of the CLI, and of clap's).
pub fn attribute(applied: &[Applied], mut e: CliError) -> CliError {
    let mentions = |long: &str| {
        let flag = format!("--{long}");
        e.message.match_indices(&flag).any(|(at, _)| {
            !e.message[at + flag.len()..]
                .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let Some(a) = applied.iter().find(|a| mentions(&a.long)) else {
        return e;
    };
    e.message = format!("{}: {}", a.origin, e.message);
    let file = a.origin.split(": ").next().unwrap_or_default();
    let fix = format!(
        "the value comes from {file}: fix it there, or give --{} on the command line (it wins), or run with --no-profile",
        a.long
    );
    e.help = Some(match e.help {
        Some(h) => format!("{h}\n      {fix}"),
        None => fix,
    });
    e
}

impl Profile {
    /// Adds this profile's settings for the command in `args` right after its name.
    /// `user`: the user's own command line, as [`user_matches`] read it.
    fn apply_to(
        &self,
        args: Vec<OsString>,
        root: &clap::Command,
        user: &ArgMatches,
    ) -> Result<(Vec<OsString>, Vec<Applied>), CliError> {
        self.check(root)?;
        let Some(at) = command_index(&args) else {
            return Ok((args, Vec::new()));
        };
        let name = args[at].to_string_lossy().into_owned();
        let Some(cmd) = settable_commands(root).find(|c| c.get_name() == name) else {
            return Ok((args, Vec::new()));
        };
        let none = ArgMatches::default();
        let sub = user.subcommand_matches(&name).unwrap_or(&none);
        let given = |arg: &clap::Arg| on_command_line(sub, arg.get_id().as_str());
        let user_args: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| given(a)).collect();
        let conflicts = |arg: &clap::Arg| {
            user_args.iter().any(|u| {
                cmd.get_arg_conflicts_with(arg)
                    .iter()
                    .any(|c| c.get_id() == u.get_id())
                    || cmd
                        .get_arg_conflicts_with(u)
                        .iter()
                        .any(|c| c.get_id() == arg.get_id())
            })
        };
        let mut out = args[..=at].to_vec();
        let mut applied = Vec::new();
        for s in self.settings_for(cmd)? {
            let Some(arg) = find_arg(cmd, &s.long) else {
                continue;
            };
            if given(arg) || from_environment(sub, arg.get_id().as_str()) || conflicts(arg) {
                continue;
            }
            applied.push(Applied {
                long: s.long.clone(),
                origin: s.origin.clone(),
            });
            if s.flag {
                out.push(format!("--{}", s.long).into());
            }
            out.extend(
                s.values
                    .iter()
                    .map(|v| OsString::from(format!("--{}={v}", s.long))),
            );
        }
        out.extend_from_slice(&args[at + 1..]);
        Ok((out, applied))
    }
}

/// `tag424 profile show|path`.
pub fn run(
    command: ProfileCommand,
    profile: Option<Profile>,
    root: &clap::Command,
) -> Result<u8, CliError> {
    match command {
        ProfileCommand::Path => {
            say(&format!("working folder: {LOCAL_FILE}"));
            match profiles_dir() {
                Some(d) => say(&format!("--profile NAME: {}/NAME.toml", d.display())),
                None => say("--profile NAME: no user config folder on this system"),
            }
            Ok(0)
        }
        ProfileCommand::Show(a) => show(a, profile, root),
    }
}

#[derive(serde::Serialize)]
struct Effective {
    option: String,
    value: Option<String>,
    source: String,
}

fn show(a: ShowArgs, profile: Option<Profile>, root: &clap::Command) -> Result<u8, CliError> {
    let mut names: Vec<String> = match &a.command {
        Some(c) => {
            if !settable_commands(root).any(|x| x.get_name() == c) {
                return Err(CliError::input(format!(
                    "--command {c}: not a command a profile can set"
                )));
            }
            vec![c.clone()]
        }
        None => {
            let mut v = vec!["batch".to_string()];
            if let Some(p) = &profile {
                v.extend(
                    p.table
                        .iter()
                        .filter(|(_, v)| v.is_table())
                        .map(|(k, _)| k.clone())
                        .filter(|k| k != "batch"),
                );
            }
            v
        }
    };
    names.dedup();
    if let Some(p) = &profile {
        p.check(root)?;
    }
    let mut commands = serde_json::Map::new();
    if !a.json {
        match &profile {
            Some(p) => say(&format!("Profile: {}", p.path.display())),
            None => say(&format!(
                "No profile (no {LOCAL_FILE} here, no --profile NAME): built-in defaults and the environment"
            )),
        }
        say("Precedence: command line > environment > profile > default.");
    }
    for name in &names {
        let Some(cmd) = settable_commands(root).find(|c| c.get_name() == name) else {
            continue;
        };
        let set = match &profile {
            Some(p) => p.settings_for(cmd)?,
            None => Vec::new(),
        };
        // Which options the environment sets for this command, as clap reads them.
        let resolved = user_matches(&[root.get_name().into(), name.into()], root);
        let resolved = resolved
            .subcommand_matches(name)
            .cloned()
            .unwrap_or_default();
        let mut rows = Vec::new();
        for arg in cmd.get_arguments().filter(|x| settable(x)) {
            let long = arg.get_long().unwrap_or_default().to_string();
            let id = arg.get_id().as_str();
            let raw = || {
                resolved.get_raw(id).map(|v| {
                    v.map(|x| x.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            };
            let from_profile = set.iter().find(|s| s.long == long);
            let env = arg
                .get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .filter(|_| from_environment(&resolved, id));
            let (value, source) = if let Some(e) = env {
                let v = if arg.is_hide_env_values_set() {
                    Some("(hidden)".to_string())
                } else {
                    raw()
                };
                (v, format!("environment {e}"))
            } else if let Some(s) = from_profile {
                let v = if s.values.is_empty() {
                    if s.flag { "on" } else { "off" }.to_string()
                } else {
                    s.values.join(", ")
                };
                (Some(v), "profile".to_string())
            } else if matches!(arg.get_action(), ArgAction::SetTrue) {
                (Some("off".to_string()), "default".to_string())
            } else if !arg.get_default_values().is_empty() {
                let v: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned())
                    .collect();
                (Some(v.join(", ")), "default".to_string())
            } else {
                (None, "not set".to_string())
            };
            rows.push(Effective {
                option: long,
                value,
                source,
            });
        }
        if a.json {
            commands.insert(
                name.clone(),
                serde_json::to_value(&rows).unwrap_or_default(),
            );
        } else {
            say(&format!("\n[{name}]"));
            for r in &rows {
                say(&format!(
                    "  --{:<20} {:<40} ({})",
                    r.option,
                    r.value.as_deref().unwrap_or("-"),
                    r.source
                ));
            }
        }
    }
    if a.json {
        print_json(&serde_json::json!({
            "format": FORMAT_VERSION,
            "profile": profile.as_ref().map(|p| p.path.display().to_string()),
            "commands": commands,
        }));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> clap::Command {
        clap::Command::new("t")
            .arg(clap::Arg::new("profile").long("profile").global(true))
            .arg(
                clap::Arg::new("no_profile")
                    .long("no-profile")
                    .action(ArgAction::SetTrue)
                    .global(true)
                    .conflicts_with("profile")
                    .overrides_with("no_profile"),
            )
            .subcommand(
                clap::Command::new("batch")
                    .arg(clap::Arg::new("reader").long("reader").env("T_READER_TEST"))
                    .arg(clap::Arg::new("url").long("url").default_value("u"))
                    .arg(clap::Arg::new("xuids").long("xuids"))
                    .arg(
                        clap::Arg::new("gen")
                            .long("generate-xuids")
                            .conflicts_with("xuids"),
                    )
                    .arg(
                        clap::Arg::new("json")
                            .long("json")
                            .action(ArgAction::SetTrue),
                    )
                    .arg(
                        clap::Arg::new("freeze")
                            .long("freeze-settings")
                            .action(ArgAction::SetTrue),
                    )
                    .arg(
                        clap::Arg::new("yes")
                            .long("yes-irreversible")
                            .action(ArgAction::SetTrue),
                    )
                    .arg(
                        clap::Arg::new("key")
                            .long("key")
                            .env("T_KEY_TEST")
                            .hide_env_values(true),
                    ),
            )
            .subcommand(clap::Command::new("info").arg(clap::Arg::new("reader").long("reader")))
    }

    fn profile(text: &str) -> Profile {
        Profile {
            path: "p.toml".into(),
            table: toml::from_str(text).unwrap(),
        }
    }

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn with(p: &Profile, args: &[&str]) -> Result<Vec<String>, CliError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let user = user_matches(&args, &root());
        Ok(strs(&p.apply_to(args, &root(), &user)?.0))
    }

    #[test]
    fn profile_fills_what_the_command_line_leaves_out() {
        let p = profile("reader = \"0\"\n[batch]\nurl = \"https://x/{xuid}\"\njson = true\nxuids = \"codes.csv\"\n");
        assert_eq!(
            with(&p, &["t", "batch"]).unwrap(),
            [
                "t",
                "batch",
                "--reader=0",
                "--json",
                "--url=https://x/{xuid}",
                "--xuids=codes.csv"
            ]
        );
        // Flags win, in either spelling; a conflicting flag drops the profile's option.
        assert_eq!(
            with(
                &p,
                &[
                    "t",
                    "batch",
                    "--reader",
                    "1",
                    "--url=v",
                    "--generate-xuids",
                    "3"
                ]
            )
            .unwrap(),
            [
                "t",
                "batch",
                "--json",
                "--reader",
                "1",
                "--url=v",
                "--generate-xuids",
                "3"
            ]
        );
        // Top-level keys reach every command that has the option.
        assert_eq!(
            with(&p, &["t", "info"]).unwrap(),
            ["t", "info", "--reader=0"]
        );
        // A section wins over the top level.
        let p = profile("reader = \"0\"\n[batch]\nreader = \"2\"\n");
        assert_eq!(
            with(&p, &["t", "batch"]).unwrap(),
            ["t", "batch", "--reader=2"]
        );
        assert_eq!(
            with(&p, &["t", "info"]).unwrap(),
            ["t", "info", "--reader=0"]
        );
    }

    #[test]
    fn bad_profiles_are_refused_with_the_fix() {
        for (text, says) in [
            ("[batch]\nurll = \"x\"\n", "has no option --urll"),
            ("[bacth]\nurl = \"x\"\n", "is not a command"),
            ("readr = \"0\"\n", "no command has an option --readr"),
            ("[batch]\njson = \"yes\"\n", "write true or false"),
            ("[batch]\nurl = [\"a\", \"b\"]\n", "takes one value"),
            ("[batch]\nkey = \"00\"\n", "keys never go in a profile"),
            (
                "[batch]\nfreeze-settings = true\n",
                "a profile never applies it",
            ),
            (
                "[batch]\nyes-irreversible = true\n",
                "a profile never applies it",
            ),
        ] {
            let e = with(&profile(text), &["t", "batch"]).unwrap_err();
            assert_eq!(e.code, 2);
            assert!(e.message.contains(says), "{text}: {}", e.message);
            assert!(e.help.is_some());
        }
    }

    /// `--profile`/`--no-profile` are read by clap wherever the user puts them (before or
    /// after the command, `=` or not, after `--help`), and not after `--`.
    #[test]
    fn the_profile_choice_is_read_by_clap() {
        let c = |v: &[&str]| {
            let args: Vec<OsString> = v.iter().map(OsString::from).collect();
            choice(&user_matches(&args, &root()))
        };
        for none in [
            &["t", "--no-profile", "batch"][..],
            &["t", "batch", "--no-profile"],
            &["t", "--no-profile", "batch", "--no-profile"],
            &["t", "batch", "--help", "--no-profile"],
            &["t", "--version", "--no-profile"],
            &["t", "help", "batch", "--no-profile"],
            &["t", "--profile", "x", "batch", "--no-profile"],
        ] {
            assert!(c(none).none, "{none:?}");
        }
        assert!(!c(&["t", "batch"]).none);
        assert!(!c(&["t", "batch", "--", "--no-profile"]).none);
        assert_eq!(
            c(&["t", "--profile", "x", "batch"]).name.as_deref(),
            Some("x")
        );
        assert_eq!(c(&["t", "batch", "--profile=y"]).name.as_deref(), Some("y"));
        assert_eq!(
            c(&["t", "--profile", "", "batch"]).name.as_deref(),
            Some("")
        );
    }

    #[test]
    fn dates_expand_in_values() {
        let v = expand("batch-{date}");
        assert_eq!(v.len(), "batch-2026-01-01".len());
        assert!(v.starts_with("batch-20"), "{v}");
    }

    #[test]
    fn the_command_is_found_after_top_level_options() {
        let a = |v: &[&str]| command_index(&v.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(a(&["t", "--profile", "x", "batch"]), Some(3));
        assert_eq!(a(&["t", "--no-profile", "batch"]), Some(2));
        assert_eq!(a(&["t", "--profile=x"]), None);
    }
}
