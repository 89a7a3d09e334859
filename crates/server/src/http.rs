//! Serving connections: HTTP/1.1 (hyper) over TCP or TLS, each connection in a task of its
//! own, with the limits a public service needs set here rather than left to defaults.
//!
//! hyper answers a request it cannot parse — a head larger than its buffer, more headers than
//! it has room for, a path longer than 64 KiB — itself, with an empty body. Its limits are
//! therefore set well above Steward's own ([`Limits`]), which the edge middleware enforces
//! with the one JSON error shape (`414 uri_too_long`, `431 headers_too_large`); only a request
//! past hyper's larger limits gets hyper's bare answer.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::tls::{ClientAddr, TlsListener};

/// Steward's own limits on a request's head, answered in JSON by the edge middleware.
#[derive(Copy, Clone, Debug)]
pub struct Limits {
    /// Longest path and query, in bytes.
    pub uri_bytes: usize,
    /// Most headers.
    pub headers: usize,
    /// Largest headers, names and values together, in bytes.
    pub header_bytes: usize,
}

/// The limits Steward answers in JSON: far above what any of its clients sends.
pub const LIMITS: Limits = Limits {
    uri_bytes: 8 * 1024,
    headers: 100,
    header_bytes: 64 * 1024,
};

/// hyper's own limits, set above [`LIMITS`] so Steward answers first.
const HYPER_MAX_HEADERS: usize = 256;
const HYPER_MAX_BUF: usize = 512 * 1024;

/// How long a client may take to send a request's head once it connects (or, on a kept-alive
/// connection, once the previous answer went out), and then its body once the head arrived:
/// past it the connection closes (a body late gets `408 body_timeout` first).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where connections come from.
pub enum Incoming {
    /// Plain TCP.
    Tcp(TcpListener),
    /// TLS, handshakes finished by [`TlsListener`].
    Tls(TlsListener),
}

/// Serves `app` on `incoming` until `shutdown` completes, then lets the requests in flight
/// finish (graceful shutdown).
pub async fn serve(
    incoming: Incoming,
    app: Router,
    read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut incoming = incoming;
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            next = accept(&mut incoming) => match next {
                Accepted::Tcp(stream, addr) => connection(stream, addr, &app, read_timeout, &graceful),
                Accepted::Tls(stream, addr) => connection(*stream, addr, &app, read_timeout, &graceful),
                Accepted::Failed => {}
            },
        }
    }
    drop(incoming);
    graceful.shutdown().await;
    Ok(())
}

enum Accepted {
    Tcp(tokio::net::TcpStream, SocketAddr),
    Tls(
        Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
        SocketAddr,
    ),
    Failed,
}

async fn accept(incoming: &mut Incoming) -> Accepted {
    match incoming {
        Incoming::Tcp(listener) => match listener.accept().await {
            Ok((stream, addr)) => {
                // Answers are small: send them at once rather than wait to fill a segment.
                let _ = stream.set_nodelay(true);
                Accepted::Tcp(stream, addr)
            }
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                Accepted::Failed
            }
        },
        Incoming::Tls(listener) => {
            let (stream, addr) = listener.next().await;
            Accepted::Tls(Box::new(stream), addr)
        }
    }
}

fn connection<S>(
    stream: S,
    addr: SocketAddr,
    app: &Router,
    read_timeout: Duration,
    graceful: &hyper_util::server::graceful::GracefulShutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = app.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(ClientAddr(addr)));
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, req).await }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_BUF)
        .keep_alive(true);
    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}
