//! Serving: plain HTTP or HTTPS (rustls, from PEM files or a self-signed certificate made with
//! rcgen and kept, see [`super::tlscert`]), graceful shutdown, and a handle for tests and the
//! benchmark.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::headrefusal::{Answer, RefuseAsJson};
use super::limits::{ConnCount, ConnRefused, Limits};
use super::{api, Verifier};

/// How to serve.
#[derive(Debug, Clone)]
pub enum Tls {
    /// Plain HTTP.
    Plain,
    /// PEM certificate chain and private key.
    Files {
        /// The certificate chain file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
    },
    /// A self-signed certificate for these names (IP addresses or host names), made at start,
    /// or kept in the file `keep` and reused ([`super::tlscert`]).
    SelfSigned {
        /// Subject alternative names of the certificate.
        names: Vec<String>,
        /// Where it is kept (owner-only; beside the database), if anywhere.
        keep: Option<PathBuf>,
    },
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A PEM file could not be read or holds no certificate.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls or rcgen refused the certificate, key or settings (their message).
    #[error("TLS: {0}")]
    Tls(String),
}

fn pem_err(path: &Path) -> impl Fn(rustls::pki_types::pem::Error) -> ServerError + '_ {
    move |e| ServerError::Pem {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

/// A server TLS configuration, and the PEM of the certificate when it was made here.
pub struct TlsSetup {
    /// The rustls server configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// The PEM of the self-signed certificate (self-signed only).
    pub self_signed_pem: Option<String>,
    /// Where the self-signed certificate is kept and whether it was made now.
    pub kept: Option<(PathBuf, super::tlscert::Made)>,
}

/// The rustls configuration for `tls` (`None` for plain HTTP). Also returns the PEM of a
/// self-signed certificate, for the operator to install on a phone if wanted.
pub fn rustls_config(tls: &Tls) -> Result<Option<TlsSetup>, ServerError> {
    let mut kept = None;
    let (certs, key, pem) = match tls {
        Tls::Plain => return Ok(None),
        Tls::Files { cert, key } => {
            let certs = CertificateDer::pem_file_iter(cert)
                .map_err(pem_err(cert))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(pem_err(cert))?;
            if certs.is_empty() {
                return Err(ServerError::Pem {
                    path: cert.clone(),
                    what: "no CERTIFICATE in the file".into(),
                });
            }
            let k = PrivateKeyDer::from_pem_file(key).map_err(pem_err(key))?;
            (certs, k, None)
        }
        Tls::SelfSigned { names, keep } => {
            let s = match keep {
                Some(path) => {
                    let (s, made) = super::tlscert::kept(path, names)?;
                    kept = Some((path.clone(), made));
                    s
                }
                None => super::tlscert::make(names)?,
            };
            let inner = |what: String| ServerError::Tls(format!("self-signed certificate: {what}"));
            let key = PrivateKeyDer::from_pem_slice(s.key_pem.as_bytes())
                .map_err(|e| inner(e.to_string()))?;
            let cert = CertificateDer::from_pem_slice(s.cert_pem.as_bytes())
                .map_err(|e| inner(e.to_string()))?;
            (vec![cert], key, Some(s.cert_pem))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    // HTTP/1.1 only (see `spawn_with`): a client asking for h2 alone gets no protocol.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsSetup {
        config: Arc::new(cfg),
        self_signed_pem: pem,
        kept,
    }))
}

/// The listen backlog of [`bind`]: connections the kernel completes before the server accepts
/// them. The default of Rust's `TcpListener::bind` (128) overflows when one client opens and
/// drops connections in a loop, and the SYNs of everyone else are dropped (each costs its
/// client a one-second retransmission); Linux caps it at `net.core.somaxconn` (4096).
pub const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets it on Unix).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    #[cfg(unix)]
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(LISTEN_BACKLOG)?;
    Ok(s.into())
}

/// A server running on the current tokio runtime.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The verifier it serves.
    pub verifier: Arc<Verifier>,
    handle: Handle<Peer>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `verifier` on `listener` until [`Running::stop`] (or its handle) stops it, with the
/// default [`Limits`] (timeouts, head bound, connection caps in all and per client address;
/// no rate limit).
pub fn spawn(
    verifier: Arc<Verifier>,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Running> {
    spawn_with(verifier, listener, tls, Limits::default())
}

/// The client address of a connection, as the server hands it to the routes (`ConnectInfo`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum_server::Address for Peer {
    type Stream = Slotted<tokio::net::TcpStream>;
    type Listener = CappedListener;
}

impl axum::extract::connect_info::Connected<Peer> for SocketAddr {
    fn connect_info(peer: Peer) -> SocketAddr {
        peer.0
    }
}

/// A listener that hands on only the connections within the caps (in all, and per client
/// address) and closes the others in its accept loop, before anything is spawned or built for
/// them: refusing costs an `accept` and a `close`. Each accepted connection holds its slot
/// for its life.
pub struct CappedListener {
    inner: tokio::net::TcpListener,
    count: Arc<ConnCount>,
    max: usize,
    per_address: usize,
}

impl axum_server::AddrListener<Slotted<tokio::net::TcpStream>, Peer> for CappedListener {
    async fn bind_to(_addr: Peer) -> std::io::Result<Self> {
        Err(std::io::Error::other(
            "a CappedListener is made from a bound listener",
        ))
    }

    async fn accept_stream(&self) -> std::io::Result<(Slotted<tokio::net::TcpStream>, Peer)> {
        loop {
            let (stream, addr) = self.inner.accept().await?;
            match self
                .count
                .enter(Some(addr.ip()), self.max, self.per_address)
            {
                Ok(slot) => {
                    return Ok((
                        Slotted {
                            inner: stream,
                            _slot: slot,
                        },
                        Peer(addr),
                    ))
                }
                // Over a cap: closed now (dropped), and the next connection accepted.
                Err(ConnRefused::Total | ConnRefused::PerAddress) => drop(stream),
            }
        }
    }

    fn get_local_addr(&self) -> std::io::Result<Peer> {
        self.inner.local_addr().map(Peer)
    }
}

/// A stream that frees its connection slot when dropped.
pub struct Slotted<S> {
    inner: S,
    _slot: super::limits::ConnGuard,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Slotted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Slotted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// [`spawn`] with explicit limits.
pub fn spawn_with(
    verifier: Arc<Verifier>,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let handle: Handle<Peer> = Handle::new();
    let app = api::router_with(verifier.clone(), &limits)
        .into_make_service_with_connect_info::<SocketAddr>();
    listener.set_nonblocking(true)?;
    let listener = CappedListener {
        inner: tokio::net::TcpListener::from_std(listener)?,
        count: Arc::new(ConnCount::default()),
        max: limits.max_connections,
        per_address: limits.per_address,
    };
    // HTTP/1.1 only: the platform's clients (a phone opening a tag's URL, an integrator's
    // server asking /v1/t) speak it, and one protocol has one set of limits. An h2c preface
    // is refused by hyper's HTTP/1 parser; TLS offers only `http/1.1` in ALPN.
    // hyper's timers: a header must arrive within the header timeout (also between the
    // requests of a keep-alive connection, which is how idle connections are closed).
    // A request's head is read into a buffer of at most `max_head_bytes`; hyper refuses a
    // longer head (431) before any route runs and closes the connection: the connection's
    // stream (outside TLS) writes the JSON answer of a malformed query instead (`headrefusal`).
    let head = limits.max_head_bytes.max(8192);
    let refusal = Arc::new(Answer::malformed(&verifier));
    let server = axum_server::Server::<Peer>::from_listener(listener)
        .handle(handle.clone())
        .first_request_timeout(limits.header_timeout)
        .http1_only();
    macro_rules! serve {
        ($server:expr) => {{
            let mut server = $server;
            server
                .http_builder()
                .http1()
                .header_read_timeout(limits.header_timeout.min(limits.idle_timeout))
                .max_buf_size(head)
                .keep_alive(true);
            tokio::spawn(async move { server.serve(app).await })
        }};
    }
    let task = match tls {
        None => serve!(server.acceptor(RefuseAsJson::new(DefaultAcceptor, refusal))),
        Some(cfg) => serve!(server.acceptor(RefuseAsJson::new(
            RustlsAcceptor::new(RustlsConfig::from_config(cfg)),
            refusal
        ))),
    };
    Ok(Running {
        addr,
        verifier,
        handle,
        task,
    })
}

impl Running {
    /// Stops accepting, lets open requests finish (up to `grace`), then commits what the
    /// store has queued and stops its writer.
    pub async fn stop(self, grace: Duration) -> std::io::Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        let served = self
            .task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        let v = self.verifier.clone();
        let _ = tokio::task::spawn_blocking(move || v.close()).await;
        served
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_files_load_and_bad_ones_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (d.path().join("cert.pem"), d.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        let files = Tls::Files {
            cert: cert.clone(),
            key: key.clone(),
        };
        let t = rustls_config(&files).unwrap().unwrap();
        assert!(t.self_signed_pem.is_none());
        // HTTP/1.1 only: no h2 in ALPN.
        assert_eq!(t.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        // Swapped files, or an empty certificate file: refused with the path.
        let swapped = Tls::Files {
            cert: key.clone(),
            key: cert.clone(),
        };
        assert!(rustls_config(&swapped).is_err());
        std::fs::write(&cert, "").unwrap();
        let e = rustls_config(&files).err().unwrap().to_string();
        assert!(e.contains("cert.pem"), "{e}");
        assert!(rustls_config(&Tls::Plain).unwrap().is_none());
    }
}
