//! Serving: plain HTTP or HTTPS (rustls, from PEM files or a self-signed certificate made with
//! rcgen and kept, see [`super::tlscert`]), graceful shutdown, and a handle for tests and the
//! benchmark.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::limits::{ConnCount, Limits};
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
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsSetup {
        config: Arc::new(cfg),
        self_signed_pem: pem,
        kept,
    }))
}

/// A server running on the current tokio runtime.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The verifier it serves.
    pub verifier: Arc<Verifier>,
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `verifier` on `listener` until [`Running::stop`] (or its handle) stops it, with the
/// default [`Limits`] (timeouts and connection cap; no rate limit).
pub fn spawn(
    verifier: Arc<Verifier>,
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Running> {
    spawn_with(verifier, listener, tls, Limits::default())
}

/// An acceptor that holds a connection slot for each connection's life, refusing (closing)
/// connections beyond the cap.
#[derive(Clone)]
struct Capped<A> {
    inner: A,
    count: Arc<ConnCount>,
    max: usize,
}

/// A stream that frees its connection slot when dropped.
struct Slotted<S> {
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

impl<A, S> axum_server::accept::Accept<tokio::net::TcpStream, S> for Capped<A>
where
    A: axum_server::accept::Accept<Slotted<tokio::net::TcpStream>, S> + Clone + Send + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send,
        >,
    >;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let slot = self.count.enter(self.max);
        let inner = self.inner.clone();
        Box::pin(async move {
            let Some(slot) = slot else {
                return Err(std::io::Error::other("connection cap reached"));
            };
            inner
                .accept(
                    Slotted {
                        inner: stream,
                        _slot: slot,
                    },
                    service,
                )
                .await
        })
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
    let handle: Handle<SocketAddr> = Handle::new();
    let app = api::router_with(verifier.clone(), &limits)
        .into_make_service_with_connect_info::<SocketAddr>();
    let count = Arc::new(ConnCount::default());
    // hyper's timers: a header must arrive within the header timeout (also between the
    // requests of a keep-alive connection, which is how idle connections are closed).
    macro_rules! configure {
        ($b:expr) => {{
            let b = $b;
            b.http1()
                .header_read_timeout(limits.header_timeout.min(limits.idle_timeout))
                .keep_alive(true);
            b.http2()
                .keep_alive_interval(Some(limits.idle_timeout / 2))
                .keep_alive_timeout(limits.idle_timeout / 2);
        }};
    }
    let task = match tls {
        None => {
            let mut server = axum_server::from_tcp(listener)?
                .handle(handle.clone())
                .first_request_timeout(limits.header_timeout)
                .map(|a| Capped {
                    inner: a,
                    count: count.clone(),
                    max: limits.max_connections,
                });
            configure!(server.http_builder());
            tokio::spawn(async move { server.serve(app).await })
        }
        Some(cfg) => {
            let mut server =
                axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(cfg))?
                    .handle(handle.clone())
                    .first_request_timeout(limits.header_timeout)
                    .map(|a| Capped {
                        inner: a,
                        count: count.clone(),
                        max: limits.max_connections,
                    });
            configure!(server.http_builder());
            tokio::spawn(async move { server.serve(app).await })
        }
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
