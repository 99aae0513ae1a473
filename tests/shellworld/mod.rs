//! A temporary folder to run documented commands in as an operator would (a `tests/run`
//! sandbox: its own HOME and XDG_CONFIG_HOME, a cleared environment, the `tag424` under test
//! first on PATH), and shell scripts bounded in time (`tests/doc_examples.rs`, `tests/help_examples.rs`).

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A temporary folder with its own HOME, and the environment a block runs with: the
/// hermetic sandbox of `tests/run`.
pub struct World {
    sandbox: crate::run::Sandbox,
}

impl World {
    pub fn new() -> World {
        World {
            sandbox: crate::run::Sandbox::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.sandbox.path()
    }

    /// A command with the cleared environment: PATH has the binary under test first.
    pub fn command(&self, program: &str) -> Command {
        self.sandbox.command(program)
    }

    /// `tag424 --no-profile`, to which the caller adds its arguments.
    pub fn tag424_command(&self) -> Command {
        self.sandbox.tag424()
    }

    /// `tag424` reading the folder's `tag424.toml`: only for examples about profiles.
    pub fn tag424_with_profiles(&self) -> Command {
        self.sandbox.tag424_with_profiles()
    }

    /// `tag424 --no-profile ARGS`, which must succeed (making a block's data).
    pub fn tag424(&self, args: &[&str]) -> String {
        let (code, out, err) = crate::run::output(self.sandbox.tag424().args(args));
        assert_eq!(code, 0, "tag424 {args:?}: {out}{err}");
        out
    }

    /// The batch the examples name: the simulated tags `tags` encoded as `batch1` with the
    /// codes q8w3sbcz and m2k9xq4p (`codes.csv`).
    pub fn encode_batch1(&self) {
        std::fs::write(self.path().join("codes.csv"), "XUID\nq8w3sbcz\nm2k9xq4p\n").unwrap();
        let args = [
            "--reader",
            "sim:tags",
            "--xuids",
            "codes.csv",
            "--out",
            "batch1",
        ];
        self.tag424(&[&["batch"][..], &args].concat());
    }

    /// Runs a shell block with bash, killed after `limit`; (success, stdout + stderr).
    pub fn sh(&self, script: &str, limit: Duration) -> (bool, String) {
        let full = format!(
            "set -euo pipefail\ntrap 'for j in $(jobs -p); do kill $j 2>/dev/null || true; done' EXIT\ntrap 'exit 143' TERM\n{script}"
        );
        let out_path = self.path().join(".block.out");
        let out = std::fs::File::create(&out_path).unwrap();
        let mut child = self
            .command("bash")
            .arg("-c")
            .arg(full)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > limit {
                // SIGTERM first, so the block's trap stops what it started in the background.
                let _ = Command::new("kill").arg(child.id().to_string()).status();
                std::thread::sleep(Duration::from_millis(500));
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        match status {
            Some(s) => (s.success(), text),
            None => (false, format!("{text}\n(killed after {limit:?})")),
        }
    }
}
