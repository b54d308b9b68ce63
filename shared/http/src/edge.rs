//! The HTTP edge of the local binary: what hyper answers before any of our code runs.
//!
//! A request line hyper cannot parse (raw non-ASCII bytes in the URL, a malformed method or
//! version) or a header it refuses (a NUL or another control character in a value, headers too
//! large) is answered by hyper itself with a bodyless 400/414/431 and the connection closed. Every
//! other answer of this API is problem+json with a request id, so a client would otherwise see two
//! kinds of error. hyper offers no hook for those answers; they are recognisable, though: they are
//! the only error responses without an `x-request-id` header (the router's middleware stamps every
//! response it makes). [`EdgeListener`] wraps each accepted connection so that such a response is
//! replaced, as it is written, by the same error as problem+json with a fresh request id. hyper
//! closes the connection after one of them, so nothing follows on it.
//!
//! In AWS, API Gateway parses HTTP and the Lambda functions never see such requests.

use axum::http::StatusCode;
use linkcrm_core::error::ApiError;
use linkcrm_domain::IdKind;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections answer hyper's own parse errors as problem+json.
pub struct EdgeListener(TcpListener);

impl EdgeListener {
    pub fn new(listener: TcpListener) -> Self {
        EdgeListener(listener)
    }
}

impl axum::serve::Listener for EdgeListener {
    type Io = EdgeStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (EdgeStream { inner: stream, pending: Vec::new(), written: 0 }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that rewrites hyper's bodyless error responses (see the module docs).
pub struct EdgeStream {
    inner: TcpStream,
    /// A replacement response still to be written, and how much of it has been.
    pending: Vec<u8>,
    written: usize,
}

impl EdgeStream {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The problem+json response standing in for hyper's own answer `head`, if `head` is one: an
/// HTTP/1.x 4xx or 5xx head, complete in this write, without `x-request-id`.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"HTTP/1.1 ").or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    let code: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if !(400..600).contains(&code) {
        return None;
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let lower = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    if lower.contains("\r\nx-request-id:") {
        return None;
    }
    let status = StatusCode::from_u16(code).ok()?;
    let (code_name, message) = match code {
        414 => ("uri_too_long", "The URL is too long."),
        431 => ("headers_too_large", "The request's headers are too large."),
        408 => ("request_timeout", "The request was not received in time."),
        400 => (
            "invalid_request",
            "The request could not be read as HTTP: the URL must be ASCII (percent-encode anything else) \
             and header values must not contain control characters.",
        ),
        _ => ("http_error", "The request could not be served."),
    };
    let request_id = linkcrm_domain::new_id(IdKind::Request);
    let body = ApiError::new(status, code_name, message).body(&request_id).to_string();
    tracing::info!(target: "access", requestId = %request_id, status = code, "request refused by the HTTP parser");
    let reason = status.canonical_reason().unwrap_or("Error");
    Some(
        format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/problem+json\r\nx-request-id: {request_id}\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl AsyncRead for EdgeStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for EdgeStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(replaced) = replacement(buf) {
            self.pending = replaced;
            self.written = 0;
            // hyper's bytes are taken as written; ours go out in their place.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    // Not vectored: hyper then hands each response head over in one buffer, which `replacement`
    // needs to see whole.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn only_hypers_own_error_heads_are_replaced() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sat, 05 Dec 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(hyper).expect("replaced")).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(out.contains("content-type: application/problem+json"));
        let body: serde_json::Value = serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["code"], "invalid_request");
        assert!(out.contains(&format!("x-request-id: {}", body["requestId"].as_str().unwrap())));

        let ours = b"HTTP/1.1 400 Bad Request\r\nx-request-id: req_1\r\ncontent-length: 2\r\n\r\n{}";
        assert!(replacement(ours).is_none(), "the router's answers pass untouched");
        assert!(replacement(b"HTTP/1.1 100 Continue\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"{\"data\":[]}").is_none());
        let big = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert!(String::from_utf8(replacement(big).unwrap()).unwrap().contains("headers_too_large"));
    }
}
