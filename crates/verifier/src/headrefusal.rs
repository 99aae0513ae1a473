//! A request head over the bound, answered as the verification API answers a malformed query:
//! HTTP 200, `{"xuid":"","error":"malformed_parameter"}`, and the connection closed.
//!
//! hyper refuses a head over its buffer bound (`max_buf_size`, [`super::limits::MAX_HEAD_BYTES`])
//! itself, while it reads the head and before any route runs: it writes
//! `HTTP/1.1 431 Request Header Fields Too Large` (or `414 URI Too Long`, for a request line
//! over 64 KiB when the bound allows one) with an empty body, and closes the connection. hyper
//! has no hook for that answer, so the connection's stream (outside TLS, where hyper writes
//! plain text) replaces it: when hyper writes one of these two status lines, the stream writes
//! the JSON answer instead, reports hyper's bytes as written, and swallows anything after (hyper
//! writes nothing more: it shuts the connection down). Nothing more of the request is read or
//! kept; every other byte passes through unchanged.
//!
//! The stream says it does not write vectored, so hyper hands it each write as one flat buffer
//! holding all the bytes it has not yet written (hyper's "flatten" strategy): a refusal's status
//! line is always whole in that buffer, at its start, or after the rest of earlier answers a
//! pipelining client has not yet read (written first, as they are). No answer of the routes
//! holds these status lines: the routes never answer 431 or 414, JSON bodies cannot hold a raw
//! CR LF, and the `/auth` page shows no client text (only the catalog's texts and numbers).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{errors, Verifier};

/// The status lines of hyper's own answers to a head over its bound.
const REFUSALS: [&[u8]; 2] = [
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
    b"HTTP/1.1 414 URI Too Long\r\n",
];

/// Where the first refusal status line starts in `buf`.
fn refusal_at(buf: &[u8]) -> Option<usize> {
    (0..buf.len())
        .find(|&i| buf[i] == b'H' && REFUSALS.iter().any(|line| buf[i..].starts_with(line)))
}

/// The answer that replaces hyper's refusal, but its `date` (set when it is written).
#[derive(Debug)]
pub(super) struct Answer {
    /// `name: value\r\n` lines of the route's error answer (content type, cache control,
    /// CORS), `content-length` and `connection: close`.
    headers: Vec<u8>,
    body: Vec<u8>,
}

impl Answer {
    /// The answer of `malformed_parameter` naming no tag, with the headers the routes give it.
    pub(super) fn malformed(v: &Verifier) -> Answer {
        let (map, body) = super::api::unrouted_error(v, errors::MALFORMED_PARAMETER);
        let mut headers = Vec::new();
        for (name, value) in &map {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.extend_from_slice(b": ");
            headers.extend_from_slice(value.as_bytes());
            headers.extend_from_slice(b"\r\n");
        }
        headers.extend_from_slice(
            format!("content-length: {}\r\nconnection: close\r\n", body.len()).as_bytes(),
        );
        Answer { headers, body }
    }

    /// The bytes on the wire, dated now (as hyper dates its answers).
    fn bytes(&self) -> Vec<u8> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut out = Vec::with_capacity(self.headers.len() + self.body.len() + 64);
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        out.extend_from_slice(&self.headers);
        out.extend_from_slice(format!("date: {date}\r\n\r\n").as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// An acceptor that wraps the streams of `inner` (plain TCP, or rustls' TLS stream) in a
/// [`JsonRefusal`].
#[derive(Debug, Clone)]
pub(super) struct RefuseAsJson<A> {
    inner: A,
    answer: Arc<Answer>,
}

impl<A> RefuseAsJson<A> {
    pub(super) fn new(inner: A, answer: Arc<Answer>) -> RefuseAsJson<A> {
        RefuseAsJson { inner, answer }
    }
}

impl<A, I, S> Accept<I, S> for RefuseAsJson<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = JsonRefusal<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let answer = self.answer.clone();
        Box::pin(async move {
            let (inner, service) = accepted.await?;
            Ok((
                JsonRefusal {
                    inner,
                    answer,
                    state: State::Passing,
                },
                service,
            ))
        })
    }
}

#[derive(Debug)]
enum State {
    /// Bytes pass through.
    Passing,
    /// The JSON answer is being written (`at` bytes of it so far).
    Answering { bytes: Vec<u8>, at: usize },
    /// The JSON answer is written: hyper's refusal, and anything after, is dropped.
    Answered,
}

/// A connection's stream that replaces hyper's refusal of an over-long head with the JSON
/// answer (module documentation).
#[derive(Debug)]
pub(super) struct JsonRefusal<S> {
    inner: S,
    answer: Arc<Answer>,
    state: State,
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonRefusal<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonRefusal<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Passing => match refusal_at(buf) {
                    None => return Pin::new(&mut this.inner).poll_write(cx, buf),
                    // Earlier answers first, as they are.
                    Some(at) if at > 0 => {
                        return Pin::new(&mut this.inner).poll_write(cx, &buf[..at])
                    }
                    Some(_) => {
                        this.state = State::Answering {
                            bytes: this.answer.bytes(),
                            at: 0,
                        }
                    }
                },
                State::Answering { bytes, at } => {
                    while *at < bytes.len() {
                        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*at..]))?;
                        if n == 0 {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                        }
                        *at += n;
                    }
                    this.state = State::Answered;
                }
                // hyper's refusal (and anything after it) counts as written.
                State::Answered => return Poll::Ready(Ok(buf.len())),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// Not vectored: hyper then writes one flat buffer (module documentation); the default
    /// `poll_write_vectored` writes the first non-empty buffer through `poll_write`.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn answer() -> Arc<Answer> {
        Arc::new(Answer {
            headers: b"content-type: application/json\r\ncontent-length: 2\r\n".to_vec(),
            body: b"{}".to_vec(),
        })
    }

    async fn written(writes: &[&[u8]]) -> Vec<u8> {
        let mut s = JsonRefusal {
            inner: Vec::new(),
            answer: answer(),
            state: State::Passing,
        };
        for w in writes {
            s.write_all(w).await.unwrap();
        }
        s.inner
    }

    #[tokio::test]
    async fn only_hypers_refusals_are_replaced() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".as_slice();
        assert_eq!(written(&[ok, ok]).await, [ok, ok].concat());
        // A 400 (a malformed head) and a route's 413 pass as they are.
        let bad = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".as_slice();
        let big = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n".as_slice();
        assert_eq!(written(&[bad, big]).await, [bad, big].concat());
        for refusal in [
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".as_slice(),
            b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".as_slice(),
        ] {
            // After an earlier answer in the same buffer (a pipelining client), then nothing.
            let out = written(&[&[ok, refusal].concat(), b"more"]).await;
            let text = String::from_utf8(out).unwrap();
            let rest = text.strip_prefix(std::str::from_utf8(ok).unwrap()).unwrap();
            assert!(
                rest.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"),
                "{rest}"
            );
            assert!(rest.contains("\r\ndate: "), "{rest}");
            assert!(rest.ends_with("GMT\r\n\r\n{}"), "{rest}");
        }
    }
}
