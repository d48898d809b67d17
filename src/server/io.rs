//! The socket and request body as the HTTP server sees them: a TCP stream that carries its
//! connection's state (so a device socket upgraded to WebSocket keeps its place in the device
//! pool for as long as it lives), plain or TLS, and a request body with a deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::ConnState;

/// A connection's stream with its state; the state (and its pool membership) is dropped
/// with the stream, wherever the stream ends up (hyper's connection or an upgraded socket).
pub(super) struct Stream {
    pub(super) tcp: Socket,
    pub(super) _state: Arc<ConnState>,
}

/// The socket under HTTP: plain TCP, or TLS over it.
pub(super) enum Socket {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Calls `$call` on the socket, whichever it is.
macro_rules! on_socket {
    ($socket:expr, $it:ident => $call:expr) => {
        match $socket {
            Socket::Plain($it) => $call,
            Socket::Tls($it) => $call,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_socket!(&mut self.tcp, it => Pin::new(it).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_socket!(&mut self.tcp, it => Pin::new(it).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_socket!(&mut self.tcp, it => Pin::new(it).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_socket!(&mut self.tcp, it => Pin::new(it).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_socket!(&mut self.tcp, it => Pin::new(it).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        on_socket!(&self.tcp, it => it.is_write_vectored())
    }
}

/// A request body that must arrive whole before its deadline; past it, reading fails and the
/// connection's state records it (the answer becomes `408`).
pub(super) struct Deadline {
    pub(super) inner: hyper::body::Incoming,
    /// `None` for a request without a body.
    pub(super) sleep: Option<Pin<Box<Sleep>>>,
    pub(super) state: Arc<ConnState>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body timeout")]
struct BodyTimeout;

impl Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|it| it.map_err(Into::into)));
        }
        if let Some(sleep) = self.sleep.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            self.state.body_timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
