//! What one TCP connection may hold: a slot among a bounded number, and only while it is used.
//!
//! Without these, about 20,000 idle connections (no token needed: nothing is sent) took the
//! server from 175 to 872 MB and made `/healthz` time out. Here the listener accepts at most
//! `max_connections` at once (the rest wait in the kernel's backlog), a connection that sends
//! nothing within `header_timeout` of being accepted is closed, one that has not sent a
//! request's whole header block within `header_timeout` of starting it is closed (a client
//! trickling one byte every few seconds kept its slot forever), and one with no traffic in
//! either direction for `idle_timeout` is closed (an MCP event stream stays open: the server
//! writes a keep-alive every 15 s).
//!
//! [`serve`] is the accept loop: axum's own sets no timer on hyper, so hyper's header read
//! timeout could not be turned on through it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Limits on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    /// Time a new connection has to send its first byte, and any request to send its whole
    /// header block.
    pub header_timeout: Duration,
    /// Time a connection may pass with no byte read or written.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 2_048,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// A TCP listener that hands out connections within [`ConnectionLimits`].
pub struct GuardedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    limits: ConnectionLimits,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, limits: ConnectionLimits) -> GuardedListener {
        GuardedListener {
            inner,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
        }
    }
}

impl GuardedListener {
    /// The next connection, once one of the `max_connections` slots is free.
    pub async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        // The semaphore is never closed; should acquiring fail anyway, go on unguarded
        // rather than stop accepting.
        let permit = self.permits.clone().acquire_owned().await.ok();
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // The MCP reply is streamed as several small SSE writes; without
                    // TCP_NODELAY, Nagle's algorithm holds the last one until the client's
                    // delayed ACK (~40 ms per call).
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(error = %e, "cannot set TCP_NODELAY");
                    }
                    let stream = GuardedStream {
                        inner: stream,
                        _permit: permit,
                        quiet: Box::pin(tokio::time::sleep(self.limits.header_timeout)),
                        idle_timeout: self.limits.idle_timeout,
                    };
                    return (stream, addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Serves `app` on every connection `listener` accepts (HTTP/1.1, keep-alive, header read
/// timeout) until `signal` completes; then stops accepting and returns once the open
/// connections have finished their requests (the caller bounds that wait).
pub async fn serve(
    mut listener: GuardedListener,
    app: Router,
    signal: impl Future<Output = ()>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(listener.limits.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A connection holding its slot until it is dropped, closed when it stays quiet too long.
pub struct GuardedStream {
    inner: TcpStream,
    _permit: Option<OwnedSemaphorePermit>,
    /// Fires when the connection has been quiet for too long.
    quiet: Pin<Box<Sleep>>,
    idle_timeout: Duration,
}

impl GuardedStream {
    fn active(&mut self) {
        let deadline = Instant::now() + self.idle_timeout;
        self.quiet.as_mut().reset(deadline);
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection quiet for too long")
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match self.quiet.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(timed_out())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.active();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written
            && n > 0
        {
            self.active();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: ConnectionLimits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move {
            serve(
                GuardedListener::new(listener, limits),
                app,
                std::future::pending(),
            )
            .await
            .unwrap();
        });
        addr
    }

    async fn get(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_and_gives_its_slot_back() {
        let addr = start(ConnectionLimits {
            max_connections: 1,
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(60),
        })
        .await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        // The one slot is taken: a second client waits in the backlog...
        let mut waiting = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        // ...until the silent one is closed by the server (read returns 0 bytes).
        let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(closed, 0);
        assert!(get(&mut waiting).await.contains("200 OK"));
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        let addr = start(ConnectionLimits {
            max_connections: 4,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_millis(300),
        })
        .await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut client).await.contains("200 OK"));
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "the server closes a connection idle past its limit");
    }

    /// Slowloris: a client that keeps sending a header byte just inside the idle limit, and
    /// never finishes its header block, used to keep its connection (and slot) forever.
    #[tokio::test]
    async fn a_header_trickled_byte_by_byte_is_cut_off() {
        let addr = start(ConnectionLimits {
            max_connections: 4,
            header_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(60),
        })
        .await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let started = std::time::Instant::now();
        let mut closed = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if client.write_all(b"X-Slow: y\r\n").await.is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), client.read(&mut buf)).await
            {
                // A 408 or a plain close: either way the server gave up on the header.
                closed = n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408");
                if closed {
                    break;
                }
            }
        }
        assert!(closed, "a trickled header kept its connection open");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
