//! Files and folders another user made, or that others can open, are never used for keys
//! (`tag424::private_fs::check`): a batch folder, its journal and lock file, the verifier's
//! database and its side files, and key, master-key and identity files given as input.
//!
//! Run as root (CI), the tests make files owned by another user (`nobody`, uid 65534) with
//! `chown`, and run tag424 itself as that unprivileged user (`setpriv`) where that is the case
//! (root passes every permission check, so root alone would prove nothing about them). Without
//! root or setpriv they print "skipped", and fail under CI=true.

#![cfg(unix)]

use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod run;

use run::BIN;
const NOBODY: u32 = 65534;
/// A key file's contents (the all-zero key).
const ZERO: &str = "00000000000000000000000000000000\n";

/// Root with `setpriv`: files can be given to another user and tag424 run as one. `None`
/// (after printing "skipped") on a machine without them; under CI=true that fails.
fn second_user(test: &str) -> Option<()> {
    let root = tag424::private_fs::my_uid() == 0;
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if root && setpriv {
        return Some(());
    }
    let why = if root {
        "setpriv (util-linux) is missing"
    } else {
        "needs root to give files to another user and run tag424 as one"
    };
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test}: {why} (CI runs as root with util-linux)"
    );
    eprintln!("skipped: {test}: {why}");
    None
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn give_away(p: &Path) {
    chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
}

/// Runs tag424 (no profile, no key variables) as this user, or as `nobody` with `as_nobody`
/// (the binary then runs from `bin`).
fn run(bin: &Path, as_nobody: bool, args: &[&str]) -> (i32, String) {
    let mut c = if as_nobody {
        // The sandbox's environment, but a home and working folder `nobody` may enter.
        let mut c = run::shared().command("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(bin)
        .current_dir("/")
        .env("HOME", "/nonexistent")
        .env("XDG_CONFIG_HOME", "/nonexistent/.config");
        c
    } else {
        run::shared().command(bin)
    };
    // Bounded: a command that should refuse at once but runs (a server) is stopped after
    // 30 s and counts as exit -1.
    let (code, _, err) = run::output_within(
        c.arg("--no-profile").args(args),
        std::time::Duration::from_secs(30),
    );
    (code, err)
}

fn me(args: &[&str]) -> (i32, String) {
    run(Path::new(BIN), false, args)
}

/// A world-readable folder for what `nobody` runs and reads, and the path of a tag424 binary
/// `nobody` can execute: the build's own when every folder up to it lets others in, else a
/// copy in that folder.
fn nobody_place() -> (tempfile::TempDir, PathBuf) {
    let place = tempfile::tempdir().unwrap();
    chmod(place.path(), 0o755);
    let (code, _) = run(Path::new(BIN), true, &["--version"]);
    if code == 0 {
        return (place, PathBuf::from(BIN));
    }
    let bin = place.path().join("tag424");
    std::fs::copy(BIN, &bin).unwrap();
    chmod(&bin, 0o755);
    assert_eq!(run(&bin, true, &["--version"]).0, 0, "nobody runs the copy");
    (place, bin)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A refusal: exit 2, the path named, what is wrong, the fix.
fn assert_refused((code, err): (i32, String), path: &Path, wrong: &str, fix: &str) {
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(s(path)), "names {}: {err}", path.display());
    assert!(err.contains(wrong), "says {wrong:?}: {err}");
    assert!(err.contains(fix), "names the fix {fix:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The refusal of a file another user made (`give_away`): the fix takes it back.
fn assert_theirs(result: (i32, String), path: &Path) {
    let fix = format!("sudo chown 0 {}", path.display());
    assert_refused(result, path, "belongs to uid 65534", &fix);
}

/// The refusal of the user's own file that others can open (mode `mode`): the fix closes it.
fn assert_open(result: (i32, String), path: &Path, mode: &str) {
    let wrong = format!("open to other users (mode {mode})");
    assert_refused(
        result,
        path,
        &wrong,
        &format!("chmod 600 {}", path.display()),
    );
}

/// `batch` of one generated code on the simulated reader into `out`.
fn batch_args(out: &Path) -> Vec<&str> {
    let args = ["batch", "--reader", "sim", "--generate-xuids", "1", "--out"];
    let mut v = args.to_vec();
    v.push(s(out));
    v
}

fn batch<'a>(out: &'a Path, extra: &[&'a str]) -> (i32, String) {
    let mut args = batch_args(out);
    args.extend_from_slice(extra);
    me(&args)
}

/// AN12196 §3.4's example URL, made with the all-zero keys.
const AN_URL: &str =
    "https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086";

/// `verify` of [`AN_URL`] with `key` as its key and meta key file.
fn verify_args(key: &Path) -> [&str; 8] {
    let template = "https://ntag.nxp.com/424?e={picc}&c={mac}";
    let key = s(key);
    [
        "verify",
        AN_URL,
        "--url",
        template,
        "--key-file",
        key,
        "--meta-key-file",
        key,
    ]
}

#[test]
fn a_batch_folder_of_another_user_or_open_to_others_is_refused() {
    let Some(()) = second_user("a_batch_folder_of_another_user_or_open_to_others_is_refused")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();

    // Another user's folder (made by them, owner-only as tag424 makes one).
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chmod(&theirs, 0o700);
    give_away(&theirs);
    assert_refused(
        batch(&theirs, &[]),
        &theirs,
        "belongs to uid 65534, not to you (uid 0)",
        &format!("sudo chown -R 0 {}", theirs.display()),
    );
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        0,
        "nothing written"
    );

    // The user's own folder that group members can write into: they may have put files of
    // theirs in it.
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o775);
    assert_refused(
        batch(&open, &[]),
        &open,
        "open to other users (mode 0775)",
        &format!("chmod 700 {}", open.display()),
    );
    assert_eq!(
        std::fs::read_dir(&open).unwrap().count(),
        0,
        "nothing written"
    );
    // Fixed as the message says, the same command runs.
    chmod(&open, 0o700);
    assert_eq!(batch(&open, &[]).0, 0);

    // The user's own folder that others can only list and read (mkdir under umask 022): made
    // owner-only before any key goes in, and said so.
    let mkdir = tmp.path().join("mkdir");
    std::fs::create_dir(&mkdir).unwrap();
    chmod(&mkdir, 0o755);
    let (code, err) = batch(&mkdir, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "{} was open to other users (mode 0755); tag424 made it owner-only (chmod 700)",
            mkdir.display()
        )),
        "{err}"
    );
    let mode = std::fs::metadata(&mkdir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn an_unprivileged_user_refuses_a_folder_root_made_open_to_all() {
    let Some(()) = second_user("an_unprivileged_user_refuses_a_folder_root_made_open_to_all")
    else {
        return;
    };
    // tag424 runs as nobody, not root: the rule holds without root's powers. The folder is
    // root's and open to everyone (so nobody can write into it; today's code did).
    let (place, bin) = nobody_place();
    let shared = place.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    assert_refused(
        run(&bin, true, &batch_args(&shared)),
        &shared,
        "belongs to uid 0, not to you (uid 65534)",
        "use a folder of your own",
    );
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);

    // And nobody's own folder works for nobody: the check is about who owns it.
    let mine = place.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    chmod(&mine, 0o700);
    give_away(&mine);
    let (code, err) = run(&bin, true, &batch_args(&mine));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_journal_or_lock_file_of_another_user_open_to_others_or_a_link_is_refused() {
    let Some(()) =
        second_user("a_journal_or_lock_file_of_another_user_open_to_others_or_a_link_is_refused")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert_eq!(batch(&out, &[]).0, 0);
    let journal = out.join("journal.jsonl");
    let before = std::fs::read(&journal).unwrap();

    give_away(&journal);
    assert_theirs(batch(&out, &[]), &journal);
    chown(&journal, Some(0), Some(0)).unwrap();
    chmod(&journal, 0o644);
    assert_open(batch(&out, &[]), &journal, "0644");
    assert_eq!(std::fs::read(&journal).unwrap(), before, "nothing appended");
    chmod(&journal, 0o600);

    // The lock file: another user's, or a symbolic link (named as such, not "too many levels
    // of symbolic links").
    let lock = out.join("tag424.lock");
    give_away(&lock);
    assert_theirs(batch(&out, &[]), &lock);
    std::fs::remove_file(&lock).unwrap();
    symlink(tmp.path().join("elsewhere"), &lock).unwrap();
    assert_refused(
        batch(&out, &[]),
        &lock,
        "is a symbolic link",
        &format!("rm {}", lock.display()),
    );
    assert!(!tmp.path().join("elsewhere").exists());
    assert_eq!(std::fs::read(&journal).unwrap(), before, "nothing appended");
}

#[test]
fn a_database_or_side_file_of_another_user_or_open_to_others_is_refused() {
    let Some(()) =
        second_user("a_database_or_side_file_of_another_user_or_open_to_others_is_refused")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert_eq!(batch(&out, &[]).0, 0);
    let serve = |db: &Path| {
        me(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--batch",
            s(&out),
            "--db",
            s(db),
        ])
    };
    let db = tmp.path().join("v.db");
    for side in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{side}", db.display()));
        // Planted by another user (owner-only, as SQLite would make it for them).
        std::fs::write(&file, b"").unwrap();
        chmod(&file, 0o600);
        give_away(&file);
        assert_theirs(serve(&db), &file);
        // The user's own, open to others.
        chown(&file, Some(0), Some(0)).unwrap();
        chmod(&file, 0o644);
        assert_open(serve(&db), &file, "0644");
        std::fs::remove_file(&file).unwrap();
    }
    assert!(!db.exists(), "no database was made");

    // A folder others can write into: they could plant the -wal file between the check and
    // SQLite's open.
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let db = open.join("v.db");
    assert_refused(
        serve(&db),
        &open,
        "can be written by other users (mode 0777)",
        &format!("chmod go-w {}", open.display()),
    );
    assert!(!db.exists());
}

#[test]
fn key_master_key_identity_and_trace_files_others_can_read_are_refused() {
    let Some(()) =
        second_user("key_master_key_identity_and_trace_files_others_can_read_are_refused")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("key.txt");
    std::fs::write(&key, ZERO).unwrap();
    let verify = |key: &Path| me(&verify_args(key));

    chmod(&key, 0o644);
    assert_open(verify(&key), &key, "0644");
    chmod(&key, 0o600);
    give_away(&key);
    assert_theirs(verify(&key), &key);
    chown(&key, Some(0), Some(0)).unwrap();
    // The same file, owner-only and ours: read, and the URL is genuine.
    assert_eq!(verify(&key).0, 0);

    // A master key others can read would give them every tag's keys: nothing is encoded.
    let master = tmp.path().join("master.txt");
    std::fs::write(&master, ZERO).unwrap();
    chmod(&master, 0o640);
    let out = tmp.path().join("out");
    assert_open(
        batch(&out, &["--master-key-file", s(&master)]),
        &master,
        "0640",
    );
    assert!(!out.join("journal.jsonl").exists());

    // An age identity file (read before anything else of the command).
    let identity = tmp.path().join("identity.txt");
    std::fs::write(
        &identity,
        "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSGAR8DF\n",
    )
    .unwrap();
    chmod(&identity, 0o600);
    give_away(&identity);
    assert_theirs(
        me(&["export", "--out", s(&out), "--identity", s(&identity)]),
        &identity,
    );

    // A --trace-keys file holds ChangeKey commands: another user's file is not appended to.
    let trace = tmp.path().join("trace.apdu");
    std::fs::write(&trace, b"").unwrap();
    give_away(&trace);
    assert_theirs(batch(&out, &["--trace", s(&trace), "--trace-keys"]), &trace);
    assert_eq!(std::fs::read(&trace).unwrap(), b"");
}

#[test]
fn an_unprivileged_user_refuses_a_key_file_root_left_readable() {
    let Some(()) = second_user("an_unprivileged_user_refuses_a_key_file_root_left_readable") else {
        return;
    };
    let (place, bin) = nobody_place();
    let key = place.path().join("key.txt");
    std::fs::write(&key, ZERO).unwrap();
    chmod(&key, 0o644);
    let args = verify_args(&key);
    assert_refused(
        run(&bin, true, &args),
        &key,
        "belongs to uid 0, not to you (uid 65534)",
        "use a file of your own",
    );
    // The same key in nobody's own owner-only file: read, and the URL is genuine.
    chmod(&key, 0o600);
    give_away(&key);
    let (code, err) = run(&bin, true, &args);
    assert_eq!(code, 0, "{err}");
}
