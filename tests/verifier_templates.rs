//! Every template: batches encoded on the simulator (the real `tag424 batch` and `sim tap`)
//! with a UID mirror, PICC data, and PICC data with encrypted file data; the verifier imports
//! each batch's template, meta read keys and read-back counters from the batch directory and
//! checks taps with the one SUN implementation, through `/v1/t` and `/auth`; a replay fails;
//! the read-back URL (the encoding's own read) never passes.

mod run;
mod vhelp;

use vhelp::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uid_picc_and_enc_templates_pass_once_through_api_and_page() {
    for be in backends() {
        uid_picc_and_enc_templates_pass_once_through_api_and_page_on(&be).await;
    }
}

async fn uid_picc_and_enc_templates_pass_once_through_api_and_page_on(be: &Backend) {
    let c = client();
    for template in [
        "https://v.example/a?uid={uid}&ctr={ctr}&cmac={mac}",
        "https://v.example/a?p={picc}&c={mac}",
        "https://v.example/a?p={picc}&d={enc}&c={mac}",
    ] {
        let d = tempfile::tempdir().unwrap();
        let (tags, out) = (d.path().join("tags"), d.path().join("out"));
        encode_batch(&tags, 2, &out, &["--url", template]);
        let cat = batch_catalog(&out);
        assert_eq!(cat.folders[0].groups[0].batches[0].template, template);
        let s = be.start_default(&cat);
        let xuid = column(&out, "keys.csv", 0);
        let uid = column(&out, "associate.csv", 1);
        let tap = || vhelp::tap(&tags, &uid);
        let pass = format!(r#"{{"xuid":"{xuid}","response":"Pass"}}"#);
        let fail = format!(r#"{{"xuid":"{xuid}","response":"Fail"}}"#);
        let first = tap();
        assert_eq!(t(&c, &s.base, &first).await, pass, "{template}");
        assert_eq!(t(&c, &s.base, &first).await, fail, "{template}: replay");
        // The page: a new tap is authentic, its refresh already checked.
        let second = tap();
        let page = vhelp::page(&c, &s.base, &second).await;
        assert!(
            page.text.contains(r#"data-verdict="authentic""#),
            "{template}: {}",
            page.text
        );
        let again = vhelp::page(&c, &s.base, &second).await;
        assert!(
            again.text.contains(r#"data-verdict="already-checked""#),
            "{template}"
        );
        // An altered scan (one hex digit of the MAC) fails.
        let third = tap();
        assert_eq!(
            t(&c, &s.base, &altered(&third)).await,
            fail,
            "{template}: altered"
        );
        assert_eq!(
            t(&c, &s.base, &third).await,
            pass,
            "{template}: after the altered one"
        );
        // Template parameters that name no tag; no parameters at all.
        let foreign: String = third
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                format!("{k}={}", "0".repeat(v.len()))
            })
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            t(&c, &s.base, &foreign).await,
            r#"{"xuid":"","error":"xuid_not_found"}"#,
            "{template}: {foreign}"
        );
        assert_eq!(
            t(&c, &s.base, "utm_source=x").await,
            r#"{"xuid":"","error":"missing_parameter"}"#
        );
        s.stop().await;
    }
}

#[test]
fn a_batch_whose_template_needs_a_missing_key_is_refused_at_import() {
    let d = tempfile::tempdir().unwrap();
    let (tags, out) = (d.path().join("tags"), d.path().join("out"));
    encode_batch(
        &tags,
        1,
        &out,
        &["--url", "https://v.example/a?p={picc}&c={mac}"],
    );
    // Without the journal the meta read key is missing.
    std::fs::remove_file(out.join("journal.jsonl")).unwrap();
    let cat = batch_catalog(&out);
    let e = cat.validate().unwrap_err().to_string();
    assert!(e.contains("meta read key"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_back_counter_of_the_journal_is_a_replay() {
    for be in backends() {
        the_read_back_counter_of_the_journal_is_a_replay_on(&be).await;
    }
}

async fn the_read_back_counter_of_the_journal_is_a_replay_on(be: &Backend) {
    use tag424::crypto::sdm::sdm_mac;
    use tag424::crypto::AesKey;
    let c = client();
    let d = tempfile::tempdir().unwrap();
    let (tags, out) = (d.path().join("tags"), d.path().join("out"));
    encode_batch(&tags, 1, &out, &[]);
    let cat = batch_catalog(&out);
    let tag = &cat.folders[0].groups[0].batches[0].tags[0];
    let read_ctr = tag.read_ctr.expect("the journal's read-back counter");
    let key: AesKey = column(&out, "keys.csv", 1).parse().unwrap();
    let s = be.start_default(&cat);
    let q = |ctr: u32| {
        let mac = sdm_mac(&key, None, Some(ctr), b"");
        format!("x={}&n={ctr:06X}&e={}", tag.xuid, hex::encode_upper(mac))
    };
    // The URL read back while encoding (it is in a --trace file) does not pass.
    assert_eq!(
        t(&c, &s.base, &q(read_ctr)).await,
        format!(r#"{{"xuid":"{}","response":"Fail"}}"#, tag.xuid)
    );
    assert_eq!(
        t(&c, &s.base, &q(read_ctr + 1)).await,
        format!(r#"{{"xuid":"{}","response":"Pass"}}"#, tag.xuid)
    );
    s.stop().await;
}
