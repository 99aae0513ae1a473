//! The test helper `tests/run` is hermetic: a `tag424.toml` in the working folder, a named
//! profile in the developer's config folder and `TAG424_*` variables of the test process
//! change nothing in what the binary under test does (issue 20).

use std::path::Path;

mod run;

/// A profile that, if read, changes the URL template and the reader.
const WRONG: &str = "url = \"https://wrong.example/a?x={xuid}&n={ctr}&e={mac}\"\nreader = \"sim:/nonexistent-wrong-reader\"\n\n[batch]\nurl = \"https://wrong.example/b?x={xuid}&n={ctr}&e={mac}\"\n";

/// A developer's setup, made in this test process: a wrong `tag424.toml` in the helper's
/// working folder, a named profile in the config folder `XDG_CONFIG_HOME` names, and the
/// variables of a developer who exported a profile, a reader, a key and a database.
fn developers_setup() -> tempfile::TempDir {
    std::fs::write(run::shared().path().join("tag424.toml"), WRONG).unwrap();
    let config = tempfile::tempdir().unwrap();
    let profiles = config.path().join("tag424/profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("dev.toml"), WRONG).unwrap();
    // Edition 2021: setting variables is safe; every test of this file wants the same ones.
    for (k, v) in [
        ("TAG424_PROFILE", "nonexistent"),
        ("TAG424_READER", "sim:/nonexistent-wrong-reader"),
        ("TAG424_KEY", "00112233445566778899AABBCCDDEEFF"),
        ("TAG424_DB_URL", "postgres://nobody@127.0.0.1:1/wrong"),
        ("XDG_CONFIG_HOME", config.path().to_str().unwrap()),
    ] {
        std::env::set_var(k, v);
    }
    config
}

fn url_check(cmd: &mut std::process::Command) -> String {
    let (code, out, err) = run::output(cmd.args(["url-check", "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[test]
fn the_planted_profile_is_read_without_the_helper() {
    // The control: the same tag424.toml, read by a run that asks for profiles, changes the
    // template, so the other tests would see it if the helper let it through.
    let sb = run::Sandbox::new();
    std::fs::write(sb.path().join("tag424.toml"), WRONG).unwrap();
    let out = url_check(&mut sb.tag424_with_profiles());
    assert!(out.contains("wrong.example"), "{out}");
}

#[test]
fn url_check_uses_the_default_template_whatever_the_developer_set() {
    let _config = developers_setup();
    let out = url_check(&mut run::tag424());
    assert!(
        out.contains("https://yourdomain.com/auth?x=q8w3sbcz"),
        "the default template: {out}"
    );
    assert!(!out.contains("wrong"), "{out}");
}

#[test]
fn a_batch_uses_the_defaults_whatever_the_developer_set() {
    let _config = developers_setup();
    let tmp = tempfile::tempdir().unwrap();
    let tags = tmp.path().join("tags");
    let out = tmp.path().join("out");
    let reader = format!("sim:{}", tags.display());
    let uid = run::ok(&["sim", "new", "--dir", tags.to_str().unwrap()]);
    run::ok(&[
        "batch",
        "--reader",
        &reader,
        "--generate-xuids",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    let url = run::ok(&["sim", "tap", "--dir", tags.to_str().unwrap(), uid.trim()]);
    assert!(
        url.starts_with("https://yourdomain.com/auth?x="),
        "the default template: {url}"
    );
}

#[test]
fn a_command_without_reader_sees_no_developer_reader() {
    let _config = developers_setup();
    let (code, out, err) = run::output(run::tag424().arg("info"));
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("no reader given"), "{err}");
    assert!(!err.contains("wrong"), "{err}");
}

#[test]
fn runs_about_profiles_see_only_the_sandboxs_profiles() {
    let _config = developers_setup();
    let sb = run::Sandbox::new();
    // No TAG424_PROFILE and no developer config folder: no profile at all, without an error.
    let out = url_check(&mut sb.tag424_with_profiles());
    assert!(!out.contains("wrong"), "{out}");
    let (code, out, err) =
        run::output(
            sb.tag424_with_profiles()
                .args(["--profile", "dev", "url-check"]),
        );
    assert_ne!(code, 0, "the developer's profile dev is not found: {out}");
    assert!(
        err.contains(&*sb.profiles_dir().to_string_lossy()),
        "looked for in the sandbox's config folder: {err}"
    );
    // The sandbox's own named profiles are.
    std::fs::create_dir_all(sb.profiles_dir()).unwrap();
    std::fs::write(sb.profiles_dir().join("line1.toml"), WRONG).unwrap();
    let out = url_check(sb.tag424_with_profiles().args(["--profile", "line1"]));
    assert!(out.contains("wrong.example"), "{out}");
    assert!(Path::new(&sb.home()).is_dir());
}
