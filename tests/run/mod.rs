//! The one way a test runs the `tag424` binary: hermetic, so no developer's profile or
//! environment changes what a test sees.
//!
//! Every command made here starts from a cleared environment (`env_clear`) with only `PATH`
//! (the binary's folder first, then the system's), `LANG=C.UTF-8`, `HOME` and
//! `XDG_CONFIG_HOME` in a temporary folder (so `CONFIG/tag424/profiles` and `~/.pgpass` are
//! the sandbox's), a temporary working folder (so `./tag424.toml` is the sandbox's) and
//! `--no-profile` before the test's arguments. Nothing of the developer's `TAG424_*`
//! (`TAG424_PROFILE`, `TAG424_READER`, `TAG424_KEY`, `TAG424_DB_URL`, …) or `PG*` variables
//! reaches the binary; a test that needs one sets it with `.env(…)` on the command. The one
//! variable passed through is `PCSCLITE_CSOCK_NAME`, the private pcscd of `.ci/with-pcscd`
//! (a test service, not a developer setting). `tests/hermetic.rs` proves it.
//!
//! Use, in a test file:
//!
//! ```ignore
//! mod run;
//!
//! // A command in the process-wide sandbox (its working folder is shared by the file's tests:
//! // give paths of your own tempdir for anything the test writes):
//! let out = run::tag424().args(["url-check", "--json"]).output().unwrap();
//! let (code, stdout, stderr) = run::output(run::tag424().args(["verify", url]));
//! let stdout = run::ok(&["sim", "new", "--dir", dir]); // asserts success
//!
//! // A sandbox of the test's own (own working folder, HOME and config folder):
//! let sb = run::Sandbox::new();
//! sb.tag424().args(["batch", …]);        // with --no-profile
//! sb.tag424_with_profiles().args([…]);   // only for tests about profiles: no --no-profile,
//!                                        // ./tag424.toml is sb.path(), named profiles are
//!                                        // in sb.profiles_dir()
//! sb.command("bash");                    // any program in the same environment
//! ```
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The `tag424` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tag424");

/// The system part of `PATH` every command gets.
pub const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// Variables of the test's own process that reach the binary: test services only.
const PASSED: [&str; 1] = ["PCSCLITE_CSOCK_NAME"];

/// A temporary working folder with its own HOME and config folder.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh sandbox, removed when dropped.
    pub fn new() -> Sandbox {
        Sandbox::in_dir(tempfile::tempdir().unwrap())
    }

    fn in_dir(dir: tempfile::TempDir) -> Sandbox {
        std::fs::create_dir_all(dir.path().join(".home/.config")).unwrap();
        Sandbox { dir }
    }

    /// The working folder of every command (where `./tag424.toml` would be found).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `HOME` of every command.
    pub fn home(&self) -> PathBuf {
        self.path().join(".home")
    }

    /// `XDG_CONFIG_HOME` of every command.
    pub fn config_dir(&self) -> PathBuf {
        self.home().join(".config")
    }

    /// Where `--profile NAME` looks for `NAME.toml` (not created).
    pub fn profiles_dir(&self) -> PathBuf {
        self.config_dir().join("tag424").join("profiles")
    }

    /// `program` with the cleared environment, in the working folder.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let bin_dir = Path::new(BIN).parent().unwrap();
        let mut c = Command::new(program);
        c.current_dir(self.path())
            .env_clear()
            .env("PATH", format!("{}:{SYSTEM_PATH}", bin_dir.display()))
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env("LANG", "C.UTF-8");
        for v in PASSED {
            if let Some(value) = std::env::var_os(v) {
                c.env(v, value);
            }
        }
        c
    }

    /// `tag424 --no-profile`, to which the test adds its arguments.
    pub fn tag424(&self) -> Command {
        let mut c = self.command(BIN);
        c.arg("--no-profile");
        c
    }

    /// `tag424` without `--no-profile`: only for tests about profiles.
    pub fn tag424_with_profiles(&self) -> Command {
        self.command(BIN)
    }
}

/// The sandbox shared by the tests of one test process: `target/tmp/run-PID-…` (Cargo's
/// `CARGO_TARGET_TMPDIR`), kept for the process's life; the next test process removes those
/// of processes that have ended.
pub fn shared() -> &'static Sandbox {
    static S: OnceLock<Sandbox> = OnceLock::new();
    S.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(tmp).unwrap();
        for e in std::fs::read_dir(tmp).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.strip_prefix("run-").and_then(|r| r.split('-').next());
            if let Some(pid) = pid.filter(|p| p.parse::<u32>().is_ok()) {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let prefix = format!("run-{}-", std::process::id());
        Sandbox::in_dir(
            tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(tmp)
                .unwrap(),
        )
    })
}

/// `tag424 --no-profile` in the shared sandbox.
pub fn tag424() -> Command {
    shared().tag424()
}

/// Runs `cmd`: (exit code or -1, stdout, stderr).
pub fn output(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs `cmd` for at most `limit` (then kills it: exit -1), stdin empty: (exit code or -1,
/// stdout, stderr). For commands that should end at once but might not (a server).
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> (i32, String, String) {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (code, out.join().unwrap(), err.join().unwrap())
}

/// `tag424 --no-profile ARGS` in the shared sandbox, which must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = output(tag424().args(args));
    assert_eq!(code, 0, "tag424 {args:?}: {out}{err}");
    out
}

/// A file of the repository (tests/data/…), absolute, since commands run elsewhere.
pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
