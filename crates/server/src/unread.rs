//! Connections whose request body was left unread: a handler, an extractor or a limit that
//! refuses a request before reading its body leaves the body's bytes on the connection, where
//! the next request on it would begin. Such an answer says `Connection: close`, so that a
//! client keeping connections alive opens a new one instead of finding this one gone
//! (P34: bad input is answered, never a dropped connection).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use http_body::{Body as _, Frame, SizeHint};

/// A request body that notes when it has been read to its end.
pub(crate) struct Tracked {
    inner: Body,
    ended: Arc<AtomicBool>,
}

impl Tracked {
    /// Wraps `inner`; the flag is raised once its last frame has been read.
    pub(crate) fn wrap(inner: Body) -> (Body, Arc<AtomicBool>) {
        let ended = Arc::new(AtomicBool::new(inner.is_end_stream()));
        let tracked = Tracked {
            inner,
            ended: Arc::clone(&ended),
        };
        (Body::new(tracked), ended)
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.ended.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a request announces a body (a length above 0, or chunks).
pub(crate) fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Marks an answer to close its connection.
pub(crate) fn close(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
}
