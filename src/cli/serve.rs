//! `tag424 serve` (the local verifier) and `tag424 scans` (its scan log).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tag424::verifier::catalog::{Catalog, Cors, GroupKind};
use tag424::verifier::config::{ConfigFile, FlagFolder};
use tag424::verifier::limits::{Limits, DEFAULT_RATE_LIMIT};
use tag424::verifier::server::{self, Tls};
use tag424::verifier::store::{self, Retention, Store};
use tag424::verifier::{Settings, Verifier};

use super::{print_json, say, CliError, FORMAT_VERSION};

/// Default database file.
pub const DEFAULT_DB: &str = "tag424-verifier.db";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8424";

/// Run the local verifier (the platform's API and the phone landing page).
///
/// Serves the tag platform's verification API (GET /v1/t) and the landing page a tag's URL
/// opens on a phone (GET /auth), from the batches this tool encoded.
///
/// Counters are single-use and forward-only; a Pass is on disk before it is answered. The
/// database keeps tags, keys, counters and the scan log across restarts (`tag424 scans`).
///
/// Example (simulated tags): encode five, serve them, scan one:
///
///   tag424 batch --reader sim:tags --generate-xuids 5 --out batch1
///
///   tag424 serve --batch batch1
///
///   curl "http://127.0.0.1:8424/v1/t?$(tag424 sim tap --dir tags <XUID> | cut -d? -f2)"
///
/// See docs/verifier.md for the API, its error codes and the config file.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port). Default 127.0.0.1:8424.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Database: a SQLite file (created if missing; holds keys: keep it private), or
    /// postgres://USER@HOST:PORT/DB shared by several instances (password from PGPASSWORD or
    /// ~/.pgpass / PGPASSFILE, never in the URL). Default tag424-verifier.db.
    #[arg(long, value_name = "FILE|URL", env = "TAG424_DB_URL")]
    pub db: Option<String>,
    /// Import a batch: a `tag424 batch` output directory, or CSV files (XUID,KEY / XUID,UID /
    /// XUID,CUID) separated by commas. Repeatable. Goes into folder "default".
    #[arg(long, value_name = "DIR|CSV[,CSV]")]
    pub batch: Vec<String>,
    #[command(flatten)]
    pub identity: super::keys::IdentityArg,
    /// Configuration file (TOML): folders, tag groups, batches, settings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Account id of the --batch folder (for c=…&a=… and u=…&a=… lookups).
    #[arg(long, default_value = "local")]
    pub aid: String,
    /// API token of the --batch folder (alphanumeric, up to 32): r=… or an X-API-Key header.
    #[arg(long, env = "TAG424_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CORS: none (default), * or one origin (the --batch folder and answers of no folder).
    #[arg(long, value_name = "none|*|ORIGIN")]
    pub cors: Option<String>,
    /// Kind of the --batch tag group.
    #[arg(long, value_enum, default_value = "authentication")]
    pub kind: KindArg,
    /// Default response of the --batch group (Fail for authentication, Found for standard).
    #[arg(long, value_name = "TEXT")]
    pub default_response: Option<String>,
    /// Pass response of the --batch group.
    #[arg(long, value_name = "TEXT", default_value = "Pass")]
    pub pass_response: String,
    /// HTTPS: PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// HTTPS: PEM private key (with --tls-cert).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// HTTPS with a certificate made now for the listen address and localhost (phone tests on
    /// a LAN; the phone warns about it once).
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,
    /// Token of the management API (PATCH /v1/x/XUID, /v1/a/AID); without it the management
    /// API is off.
    #[arg(long, env = "TAG424_MANAGEMENT_TOKEN", hide_env_values = true)]
    pub management_token: Option<String>,
    /// Requests per second per client address and per token (burst: twice that); 0 turns the
    /// rate limit off. Over it, /v1/t answers {"error":"rate_limited"} (HTTP 200).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Scan log retention for rows that did not pass: N (rows) or Nd (days). Passes are kept.
    #[arg(long, value_name = "N|Nd")]
    pub log_retention: Option<String>,
}

/// Parses `--log-retention`.
fn retention(s: &str) -> Result<Retention, CliError> {
    let bad = || {
        input(format!(
            "--log-retention {s:?}: N (rows) or Nd (days), e.g. 100000 or 30d"
        ))
    };
    if let Some(d) = s.strip_suffix('d') {
        let days: u64 = d.parse().map_err(|_| bad())?;
        return Ok(Retention {
            max_rows: None,
            max_age_ms: Some(days * 86_400_000),
        });
    }
    Ok(Retention {
        max_rows: Some(s.parse().map_err(|_| bad())?),
        max_age_ms: None,
    })
}

/// The machine's addresses (for a certificate when listening on an unspecified address).
fn machine_addresses() -> Result<Vec<String>, CliError> {
    let ifs = if_addrs::get_if_addrs().map_err(|e| {
        input(format!(
            "--tls-self-signed on an unspecified address: cannot list this machine's addresses ({e}); listen on the LAN address instead (--listen 192.168.1.20:8424)"
        ))
    })?;
    Ok(ifs
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback())
        .map(|ip| ip.to_string())
        .collect())
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Authentication,
    Standard,
}

/// Print the verifier's scan log (oldest first).
///
/// Example:
///   tag424 scans --db tag424-verifier.db --limit 20
#[derive(Debug, clap::Args)]
pub struct ScansArgs {
    /// The verifier's database: a SQLite file or postgres://USER@HOST:PORT/DB.
    #[arg(long, value_name = "FILE|URL", env = "TAG424_DB_URL", default_value = DEFAULT_DB)]
    pub db: String,
    /// Only the last N scans.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn input(e: impl std::fmt::Display) -> CliError {
    CliError::input(e.to_string())
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

pub fn serve(a: ServeArgs) -> Result<u8, CliError> {
    let cfg = match &a.config {
        Some(p) => ConfigFile::load(p).map_err(input)?,
        None => ConfigFile::default(),
    };
    let listen = a
        .listen
        .clone()
        .or(cfg.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen.parse().map_err(|_| {
        input(format!(
            "--listen {listen:?}: expected IP:PORT, e.g. 127.0.0.1:8424"
        ))
    })?;
    let db =
        a.db.clone()
            .or(cfg.db.as_ref().map(|p| p.to_string_lossy().into_owned()))
            .unwrap_or_else(|| DEFAULT_DB.to_string());
    let cors_text = a.cors.clone().or(cfg.cors.clone());
    let cors = Cors::parse(cors_text.as_deref().unwrap_or("none")).map_err(input)?;

    // The catalog: the config file's folders, plus a "default" folder for --batch.
    let keys = a.identity.access()?;
    let mut catalog: Catalog = cfg.catalog(keys.identity.as_ref()).map_err(input)?;
    if !a.batch.is_empty() {
        let flags = FlagFolder {
            aid: a.aid.clone(),
            token: a.token.clone(),
            cors: cors.clone(),
            kind: match a.kind {
                KindArg::Authentication => GroupKind::Authentication,
                KindArg::Standard => GroupKind::Standard,
            },
            default_response: a.default_response.clone(),
            pass_response: a.pass_response.clone(),
        };
        catalog.folders.extend(
            flags
                .catalog(&a.batch, keys.identity.as_ref())
                .map_err(input)?
                .folders,
        );
    }
    let import = !catalog.folders.is_empty();
    if import {
        catalog.validate().map_err(input)?;
    }

    let tls = if let (Some(cert), Some(key)) = (
        a.tls_cert.clone().or(cfg.tls_cert.clone()),
        a.tls_key.clone().or(cfg.tls_key.clone()),
    ) {
        Tls::Files { cert, key }
    } else if a.tls_self_signed || cfg.tls_self_signed.unwrap_or(false) {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if listen.ip().is_unspecified() {
            names.extend(machine_addresses()?);
        } else if !is_loopback(&listen) {
            names.push(listen.ip().to_string());
        }
        Tls::SelfSigned { names }
    } else {
        Tls::Plain
    };
    let tls_config = server::rustls_config(&tls).map_err(input)?;

    let management_token = a.management_token.clone().or(cfg.management_token.clone());
    if let Some(t) = &management_token {
        if !tag424::verifier::query::valid_token(t) {
            return Err(input(
                "--management-token: alphanumeric, 1 to 32 characters",
            ));
        }
    }
    let rate = a
        .rate_limit
        .or(cfg.rate_limit)
        .unwrap_or(DEFAULT_RATE_LIMIT);
    let retention = match a.log_retention.clone().or(cfg.log_retention.clone()) {
        Some(r) => retention(&r)?,
        None => Retention::default(),
    };
    let store = store::open(&db).map_err(|e| match e {
        store::StoreError::NotPrivate(e) => super::not_private("--db", e),
        e => input(e),
    })?;
    let settings = Settings {
        cors,
        management_token,
        retention,
    };
    let verifier =
        Verifier::open_with(store, import.then_some(&catalog), settings).map_err(input)?;
    let verifier = Arc::new(verifier);
    let listener =
        TcpListener::bind(listen).map_err(|e| input(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(input)?;
    if matches!(tls, Tls::Plain) && !is_loopback(&addr) {
        eprintln!(
            "warning: serving plain HTTP on {addr}, which is not a loopback address: scans and API \
             tokens cross the network unencrypted. Use --tls-self-signed or --tls-cert/--tls-key."
        );
    }
    let scheme = if matches!(tls, Tls::Plain) {
        "http"
    } else {
        "https"
    };
    let registry = verifier.registry();
    let folders = registry.folders.len();
    say(&format!(
        "tag424 serve: {} in {} from {}",
        super::count(registry.tag_count(), "tag", "tags"),
        super::count(folders, "folder", "folders"),
        db
    ));
    if let Tls::SelfSigned { names } = &tls {
        say(&format!(
            "tag424 serve: self-signed certificate for {} (made now; not saved)",
            names.join(", ")
        ));
    }
    say(&format!(
        "tag424 serve: listening on {scheme}://{addr} (GET /v1/t, /auth, /healthz; Ctrl-C stops); rate limit {}",
        if rate == 0 { "off".to_string() } else { format!("{rate}/s per client") }
    ));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tag424-serve")
        .build()
        .map_err(input)?;
    let result = rt.block_on(async {
        let running = server::spawn_with(
            verifier.clone(),
            listener,
            tls_config.map(|t| t.config),
            Limits::with_rate(rate),
        )?;
        server::shutdown_signal().await;
        eprintln!("tag424 serve: stopping (finishing open requests, committing the scan log)");
        running.stop(Duration::from_secs(5)).await
    });
    result.map_err(|e| input(format!("server: {e}")))?;
    eprintln!("tag424 serve: stopped");
    Ok(0)
}

pub use tag424::verifier::timefmt::utc;

pub fn scans(a: ScansArgs) -> Result<u8, CliError> {
    let mut store = store::open_existing(&a.db).map_err(input)?;
    let rows = store.scans(a.limit).map_err(input)?;
    if a.json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["time"] = serde_json::Value::String(utc(r.time_ms));
                v
            })
            .collect();
        print_json(&serde_json::json!({"format": FORMAT_VERSION, "scans": rows}));
        return Ok(0);
    }
    say(&format!(
        "{:<24} {:<4} {:<16} {:>8} {:<10} {:<20} {}",
        "TIME (UTC)", "VIA", "XUID", "COUNTER", "RESULT", "REASON", "FROM"
    ));
    for r in &rows {
        say(&format!(
            "{:<24} {:<4} {:<16} {:>8} {:<10} {:<20} {}",
            utc(r.time_ms),
            r.endpoint,
            if r.xuid.is_empty() { "-" } else { &r.xuid },
            r.ctr.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
            r.result,
            r.reason,
            r.remote
        ));
    }
    let passes = rows.iter().filter(|r| r.passed).count();
    say(&format!(
        "{}, {passes} passed",
        super::count(rows.len(), "scan", "scans")
    ));
    Ok(0)
}
