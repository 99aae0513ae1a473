//! Issue 12 in the verifier: an LRP batch (`batch --lrp-irreversible` on the simulator) is
//! served in LRP mode, read from its journal, and every tap passes once through `/v1/t` and
//! `/auth`; a TagTamper tag's `{tt}` status feeds the tamper rule (`Pass` while closed,
//! `Tampered` after `tag424 sim tamper`). Both on SQLite and, with `TAG424_TEST_PG`, PostgreSQL.

mod run;
mod vhelp;

use std::path::{Path, PathBuf};

use tag424::verifier::config::ConfigFile;
use vhelp::*;

/// (xuid, uid) of each row of the batch's associate.csv.
fn tags_of(out: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(out.join("associate.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            (f.next().unwrap().to_string(), f.next().unwrap().to_string())
        })
        .collect()
}

/// `count` new simulated tags in `d/tags`, encoded in LRP mode with `template` into `d/out`.
fn lrp_batch(d: &Path, count: u32, template: &str) -> (PathBuf, PathBuf) {
    let (tags, out) = (d.join("tags"), d.join("out"));
    let n = count.to_string();
    run(&["sim", "new", "--count", &n, "--dir", tags.to_str().unwrap()]);
    encode_batch(
        &tags,
        count,
        &out,
        &[
            "--url",
            template,
            "--lrp-irreversible",
            "--yes-irreversible",
        ],
    );
    (tags, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lrp_batch_passes_once_per_tap_through_api_and_page() {
    // PICC data (48 hex digits: LRP); plain mirrors, where only the batch says LRP.
    for template in [
        "https://v.example/a?p={picc}&c={mac}",
        "https://v.example/a?uid={uid}&ctr={ctr}&cmac={mac}",
    ] {
        lrp_batch_on(template).await;
    }
}

async fn lrp_batch_on(template: &str) {
    let d = tempfile::tempdir().unwrap();
    let (tags, out) = lrp_batch(d.path(), 2, template);
    let cat = batch_catalog(&out);
    let batch = &cat.folders[0].groups[0].batches[0];
    assert!(batch.lrp, "the journal says LRP");
    assert_eq!(batch.template, template);
    let c = client();
    for be in backends() {
        let s = be.start_default(&cat);
        for (xuid, uid) in tags_of(&out) {
            let pass = format!(r#"{{"xuid":"{xuid}","response":"Pass"}}"#);
            let fail = format!(r#"{{"xuid":"{xuid}","response":"Fail"}}"#);
            let first = tap(&tags, &uid);
            if template.contains("{picc}") {
                let p = first.split('&').next().unwrap();
                assert_eq!(p.len(), 2 + 48, "LRP PICC data: {first}");
            }
            assert_eq!(t(&c, &s.base, &first).await, pass, "{template} {uid}");
            assert_eq!(t(&c, &s.base, &first).await, fail, "{uid}: replay");
            let second = tap(&tags, &uid);
            let page = vhelp::page(&c, &s.base, &second).await;
            assert!(
                page.text.contains(r#"data-verdict="authentic""#),
                "{uid}: {}",
                page.text
            );
            let again = vhelp::page(&c, &s.base, &second).await;
            assert!(again.text.contains(r#"data-verdict="already-checked""#));
            // One hex digit of the MAC altered: no pass.
            let third = tap(&tags, &uid);
            assert_eq!(
                t(&c, &s.base, &altered(&third)).await,
                fail,
                "{uid}: altered"
            );
            assert_eq!(t(&c, &s.base, &third).await, pass, "{uid}");
        }
        s.stop().await;
    }
}

#[test]
fn mode_aes_on_an_lrp_batch_directory_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (_, out) = lrp_batch(d.path(), 1, "https://v.example/a?p={picc}&c={mac}");
    let cfg = d.path().join("serve.toml");
    let write = |mode: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[[folder]]\nname = \"f\"\naid = \"f01\"\n[[folder.group]]\nname = \"g\"\nkind = \"authentication\"\n[[folder.group.batch]]\ndir = {:?}\n{mode}\n",
                out.display().to_string()
            ),
        )
        .unwrap();
    };
    write("mode = \"aes\"");
    let e = ConfigFile::load(&cfg)
        .and_then(|c| c.catalog(None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mode") && e.contains("LRP"), "{e}");
    write("mode = \"lrp\"");
    let cat = ConfigFile::load(&cfg)
        .and_then(|c| c.catalog(None))
        .unwrap();
    assert!(cat.folders[0].groups[0].batches[0].lrp);
    write("mode = \"des\"");
    assert!(ConfigFile::load(&cfg)
        .and_then(|c| c.catalog(None))
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tamper_rule_answers_once_the_loop_is_opened() {
    let c = client();
    for be in backends() {
        let d = tempfile::tempdir().unwrap();
        let (tags, out) = (d.path().join("tags"), d.path().join("out"));
        let dir = tags.to_str().unwrap();
        let uid = run(&["sim", "new", "--tag-tamper", "--dir", dir])
            .trim()
            .to_string();
        let template = "https://yourdomain.com/auth?x={xuid}&{macstart}n={ctr}&t={tt}&e={mac}";
        encode_batch(&tags, 1, &out, &["--url", template]);
        let mut cat = batch_catalog(&out);
        assert!(!cat.folders[0].groups[0].batches[0].lrp);
        cat.folders[0].groups[0].rule_groups = vec![
            rg(&["tamper = open"], "Tampered"),
            rg(&["auth_pass"], "Pass"),
        ];
        cat.folders[0].groups[0].default_response = "Fail".into();
        let s = be.start_default(&cat);
        let xuid = tags_of(&out)[0].0.clone();
        let answer = |r: &str| format!(r#"{{"xuid":"{xuid}","response":"{r}"}}"#);
        let closed = tap(&tags, &uid);
        assert!(closed.contains("&t=CC&"), "{closed}");
        assert_eq!(t(&c, &s.base, &closed).await, answer("Pass"));
        // The status is under the MAC: a forged "open" is no genuine scan.
        let next = tap(&tags, &uid);
        let forged = next.replace("&t=CC&", "&t=OO&");
        assert_eq!(t(&c, &s.base, &forged).await, answer("Fail"));
        assert_eq!(t(&c, &s.base, &next).await, answer("Pass"));
        run(&["sim", "tamper", "--dir", dir, &uid]);
        let open = tap(&tags, &uid);
        assert!(open.contains("&t=OO&"), "{open}");
        assert_eq!(t(&c, &s.base, &open).await, answer("Tampered"));
        // Closed again: the permanent status keeps the answer.
        run(&["sim", "tamper", "--close", "--dir", dir, &uid]);
        let reclosed = tap(&tags, &uid);
        assert!(reclosed.contains("&t=OC&"), "{reclosed}");
        assert_eq!(t(&c, &s.base, &reclosed).await, answer("Tampered"));
        s.stop().await;
    }
}
