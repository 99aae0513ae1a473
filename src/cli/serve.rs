//! `tag424 serve` (the local verifier) and `tag424 scans` (its scan log).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tag424::verifier::catalog::{Catalog, Cors, GroupKind};
use tag424::verifier::config::{ConfigFile, FlagFolder, FLAG_FOLDER};
use tag424::verifier::limits::{Limits, DEFAULT_CONNECTIONS_PER_ADDRESS, DEFAULT_RATE_LIMIT};
use tag424::verifier::server::{self, Tls};
use tag424::verifier::store::{self, Retention, Store};
use tag424::verifier::tlscert::Made;
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
/// HTTP/1.1 only; a request's head (request line and headers) is at most 16 KiB (beyond it:
/// HTTP 200 malformed_parameter, connection closed), a token at most 32 characters.
///
/// See docs/verifier.md for the API, its error codes, the limits and the config file.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples (simulated tags: encode five, serve them, scan one):
  tag424 batch --reader sim:tags --generate-xuids 5 --out batch1
  tag424 serve --batch batch1                                      # http://127.0.0.1:8424
  curl \"http://127.0.0.1:8424/v1/t?$(tag424 sim tap --dir tags XUID | cut -d? -f2)\"
  tag424 serve --config verifier.toml --listen 127.0.0.1:0         # folders and groups from a file"
)]
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
    /// Account id of the --batch folder (for c=…&a=… and u=…&a=… lookups). Default local;
    /// importing again without it keeps the folder's stored one.
    #[arg(long, value_name = "AID")]
    pub aid: Option<String>,
    /// API token of the --batch folder (alphanumeric, up to 32; clients send it as r=… or an
    /// X-API-Key header), read from FILE (owner-only: chmod 600). Also TAG424_API_TOKEN; never
    /// on the command line. Importing again without it keeps the folder's stored token
    /// (--no-token removes it).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Refused: a token on the command line is visible in the process list.
    #[arg(long, value_name = "TOKEN", hide = true)]
    pub token: Option<String>,
    /// Remove the --batch folder's API token (kept from the database otherwise).
    #[arg(long, conflicts_with_all = ["token", "token_file"])]
    pub no_token: bool,
    /// CORS: none, * or one origin as browsers send it (https://host[:port], no trailing
    /// slash): answers of no folder, and the --batch folder (whose stored setting is kept when
    /// this is not given). Default none.
    #[arg(long, value_name = "none|*|ORIGIN")]
    pub cors: Option<String>,
    /// Kind of the --batch tag group. Default authentication (or the stored one).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Default response of the --batch group (Fail for authentication, Found for standard).
    #[arg(long, value_name = "TEXT")]
    pub default_response: Option<String>,
    /// Pass response of the --batch group. Default Pass.
    #[arg(long, value_name = "TEXT")]
    pub pass_response: Option<String>,
    /// HTTPS: PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// HTTPS: PEM private key (with --tls-cert).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// HTTPS with a self-signed certificate for the listen address and localhost (phone tests
    /// on a LAN), kept owner-only beside the database (FILE.tls.pem) and reused at every start,
    /// so a phone warns about it once.
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,
    /// Token of the management API (PATCH /v1/x/XUID, /v1/a/AID), read from FILE (owner-only:
    /// chmod 600). Also TAG424_MANAGEMENT_TOKEN; never on the command line. Without it the
    /// management API is off.
    #[arg(long, value_name = "FILE")]
    pub management_token_file: Option<PathBuf>,
    /// Refused: a token on the command line is visible in the process list.
    #[arg(long, value_name = "TOKEN", hide = true)]
    pub management_token: Option<String>,
    /// Requests per second per client address and per token (burst: twice that); 0 turns the
    /// rate limit off. Over it, /v1/t answers {"error":"rate_limited"} (HTTP 200).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Connections one client address (an IPv6 /64) may hold open at once, of 4,096 in all.
    /// Default 64; 0 = no per-address cap (behind a reverse proxy, where every client has the
    /// proxy's address).
    #[arg(long, value_name = "N")]
    pub connections_per_address: Option<usize>,
    /// Scan log retention for rows that did not pass (passes are always kept): Nd (days), N
    /// (none beyond the newest N rows), both (Nd,N), or `all` (keep every row). Default
    /// 90d,1000000. Scan counts ({scount}) count the rows kept.
    #[arg(long, value_name = "Nd,N|all")]
    pub log_retention: Option<String>,
}

/// Parses `--log-retention` (the one parser: [`Retention::parse`]).
fn retention(s: &str) -> Result<Retention, CliError> {
    Retention::parse(s).map_err(|e| input(format!("--log-retention {e}")))
}

/// The machine's addresses other than loopback (for a certificate when listening on an
/// unspecified address, and the URL a phone opens).
fn machine_addresses() -> Result<Vec<IpAddr>, CliError> {
    let ifs = if_addrs::get_if_addrs().map_err(|e| {
        input(format!(
            "--tls-self-signed on an unspecified address: cannot list this machine's addresses ({e}); listen on the LAN address instead (--listen 192.168.1.20:8424)"
        ))
    })?;
    Ok(ifs
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback())
        .collect())
}

/// The URLs a phone on the network opens when the verifier listens on an unspecified address
/// (`0.0.0.0`: this machine's IPv4 addresses; `::`: all), link-local ones left out.
fn lan_urls(scheme: &str, addr: &SocketAddr) -> Vec<String> {
    let ips = if_addrs::get_if_addrs()
        .map(|ifs| ifs.into_iter().map(|i| i.ip()).collect::<Vec<_>>())
        .unwrap_or_default();
    ips.into_iter()
        .filter(|ip| !ip.is_loopback())
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_link_local(),
            IpAddr::V6(v6) => addr.is_ipv6() && (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .map(|ip| format!("{scheme}://{}/", SocketAddr::new(ip, addr.port())))
        .collect()
}

/// The flags of the --batch folder that were given (for the refusal without --batch).
fn folder_flags_given(a: &ServeArgs) -> Vec<&'static str> {
    [
        (a.aid.is_some(), "--aid"),
        (
            a.token_file.is_some()
                || std::env::var_os("TAG424_API_TOKEN").is_some_and(|v| !v.is_empty()),
            "--token-file (or TAG424_API_TOKEN)",
        ),
        (a.no_token, "--no-token"),
        (a.kind.is_some(), "--kind"),
        (a.default_response.is_some(), "--default-response"),
        (a.pass_response.is_some(), "--pass-response"),
    ]
    .into_iter()
    .filter_map(|(given, name)| given.then_some(name))
    .collect()
}

/// The catalog the database holds before this start's import (what a re-import keeps).
fn stored_catalog(
    mut store: Box<dyn Store>,
) -> (Box<dyn Store>, Result<Catalog, store::StoreError>) {
    let stored = store.load().map(|l| l.catalog);
    (store, stored)
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Authentication,
    Standard,
}

/// Print the verifier's scan log (oldest first).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tag424 scans --limit 20                      # the last 20 scans of ./tag424-verifier.db
  tag424 scans --db postgres://tag424@db.example:5432/tags --json")]
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
    // Refused on the command line even without --batch: the process list already shows it.
    let batch_token = super::secret::TokenSource {
        flag: "--token",
        file_flag: "--token-file",
        env: "TAG424_API_TOKEN",
    }
    .resolve(a.token.as_deref(), a.token_file.as_deref())?;
    let folder_flags = folder_flags_given(&a);
    if a.batch.is_empty() {
        if let Some(flag) = folder_flags.first() {
            return Err(input(format!(
                "{flag} sets the folder of --batch (folder \"{FLAG_FOLDER}\"), and no --batch is given: \
                 add --batch DIR (importing a batch again keeps its counters and scan log), or set it on \
                 a [[folder]] of --config"
            )));
        }
    }
    let store = store::open(&db).map_err(|e| match e {
        store::StoreError::NotPrivate(e) => super::not_private("--db", e),
        e => input(e),
    })?;
    let (store, stored) = stored_catalog(store);

    // The catalog: the config file's folders, plus a "default" folder for --batch.
    let keys = a.identity.access()?;
    let mut catalog: Catalog = cfg.catalog(keys.identity.as_ref()).map_err(input)?;
    let mut kept = Vec::new();
    if !a.batch.is_empty() {
        let mut flags = FlagFolder {
            aid: a.aid.clone(),
            token: match (batch_token, a.no_token) {
                (Some(t), _) => Some(Some(t)),
                (None, true) => Some(None),
                (None, false) => None,
            },
            cors: cors_text.is_some().then(|| cors.clone()),
            kind: a.kind.map(|k| match k {
                KindArg::Authentication => GroupKind::Authentication,
                KindArg::Standard => GroupKind::Standard,
            }),
            default_response: a.default_response.clone(),
            pass_response: a.pass_response.clone(),
        };
        match &stored {
            Ok(stored) => kept = flags.keep_stored(stored),
            Err(e) => eprintln!(
                "warning: the database's catalog could not be read ({e}); folder \"{FLAG_FOLDER}\" \
                 takes only the settings given on the command line"
            ),
        }
        catalog.folders.extend(
            flags
                .catalog(&a.batch, keys.identity.as_ref())
                .map_err(input)?
                .folders,
        );
    } else if let (Some(c), Ok(stored)) = (&a.cors, &stored) {
        // Without --batch, --cors sets answers of no folder; a stored "default" folder keeps
        // its own setting: refuse rather than let the operator believe it changed.
        if let Some(f) = stored.folders.iter().find(|f| f.name == FLAG_FOLDER) {
            if f.cors != cors {
                return Err(input(format!(
                    "--cors {c}: folder \"{FLAG_FOLDER}\" in the database answers with CORS {}, and \
                     --cors changes it only with --batch: add --batch DIR (importing again keeps counters \
                     and the scan log)",
                    f.cors
                )));
            }
        }
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
            names.extend(machine_addresses()?.iter().map(IpAddr::to_string));
        } else if !is_loopback(&listen) {
            names.push(listen.ip().to_string());
        }
        // Kept beside a SQLite database and reused, so a phone warns once.
        let keep = (!store::is_postgres_url(&db))
            .then(|| tag424::verifier::tlscert::kept_path(std::path::Path::new(&db)));
        Tls::SelfSigned { names, keep }
    } else {
        Tls::Plain
    };
    let tls_config = server::rustls_config(&tls).map_err(input)?;

    let management_token = super::secret::TokenSource {
        flag: "--management-token",
        file_flag: "--management-token-file",
        env: "TAG424_MANAGEMENT_TOKEN",
    }
    .resolve(
        a.management_token.as_deref(),
        a.management_token_file.as_deref(),
    )?
    .or(cfg.management_token.clone());
    if let Some(t) = &management_token {
        if !tag424::verifier::query::valid_token(t) {
            return Err(input(
                "management_token in the config file: alphanumeric, 1 to 32 characters",
            ));
        }
    }
    let rate = a
        .rate_limit
        .or(cfg.rate_limit)
        .unwrap_or(DEFAULT_RATE_LIMIT);
    let retention = match (&a.log_retention, cfg.log_retention) {
        (Some(r), _) => retention(r)?,
        (None, Some(r)) => r,
        (None, None) => Retention::DEFAULT,
    };
    let settings = Settings {
        cors,
        management_token,
        retention,
    };
    let verifier =
        Verifier::open_with(store, import.then_some(&catalog), settings).map_err(input)?;
    let verifier = Arc::new(verifier);
    let listener =
        server::bind(listen).map_err(|e| input(format!("cannot listen on {listen}: {e}")))?;
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
    if !kept.is_empty() {
        say(&format!(
            "tag424 serve: folder \"{FLAG_FOLDER}\" keeps from the database: {}",
            kept.join("; ")
        ));
    }
    for note in catalog.inactive_rule_groups() {
        say(&format!(
            "tag424 serve: note: {note} (the platform: a Rule Group is not active until its data is complete)"
        ));
    }
    if let Tls::SelfSigned { names, .. } = &tls {
        let kept = tls_config.as_ref().and_then(|t| t.kept.as_ref());
        let how = match kept {
            Some((p, Made::New)) => format!(
                "made now and kept in {} (owner-only): a phone warns about it once",
                p.display()
            ),
            Some((p, Made::Reused)) => format!(
                "reused from {}: a phone that accepted it does not warn again",
                p.display()
            ),
            Some((p, Made::Replaced)) => format!(
                "made now and kept in {}: the one kept there was for other addresses, so phones warn once more",
                p.display()
            ),
            None => "made now, not kept (the database is PostgreSQL: use --tls-cert/--tls-key for a lasting one)".into(),
        };
        say(&format!(
            "tag424 serve: self-signed certificate for {} (subject \"{}\"), {how}",
            names.join(", "),
            tag424::verifier::tlscert::common_name(names)
        ));
    }
    if addr.ip().is_unspecified() {
        let urls = lan_urls(scheme, &addr);
        match urls.first() {
            Some(first) => say(&format!(
                "tag424 serve: from a phone on this network open {} (tags: --url \"{first}auth?x={{xuid}}&n={{ctr}}&e={{mac}}\")",
                urls.join(" or ")
            )),
            None => say("tag424 serve: this machine has no LAN address a phone could open (only loopback)"),
        }
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
            Limits {
                per_address: a
                    .connections_per_address
                    .or(cfg.connections_per_address)
                    .unwrap_or(DEFAULT_CONNECTIONS_PER_ADDRESS),
                ..Limits::with_rate(rate)
            },
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
    use super::table::{render, Align::*};
    let header = [
        ("TIME (UTC)", Left),
        ("VIA", Left),
        ("XUID", Left),
        ("COUNTER", Right),
        ("RESULT", Left),
        ("REASON", Left),
        ("FROM", Left),
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                utc(r.time_ms),
                r.endpoint.clone(),
                r.xuid.clone(),
                r.ctr.map(|c| c.to_string()).unwrap_or_default(),
                r.result.clone(),
                r.reason.clone(),
                r.remote.clone(),
            ]
        })
        .collect();
    for line in render(&header, &cells) {
        say(&line);
    }
    let passes = rows.iter().filter(|r| r.passed).count();
    say(&format!(
        "{}, {passes} passed",
        super::count(rows.len(), "scan", "scans")
    ));
    Ok(0)
}
