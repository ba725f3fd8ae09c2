//! Connection lifetime: the forced end of a connection, after `max_connection_age` + grace and at the end
//! of the shutdown grace period (docs/spec/security.md "Abuse and faults"; issue 7 item 4).
//!
//! The graceful half — an HTTP/2 GOAWAY telling the client to open a new connection for its next calls —
//! is hyper's, asked for by tonic's `Server::max_connection_age` and by `serve_with_incoming_shutdown`.
//! The forced half is here, because tonic 0.14.9 does not give it: with `max_connection_age_grace` set,
//! its connection task sleeps for age + grace and then closes **without** the GOAWAY at `age`
//! (`connection_timeout_future` in tonic's `transport/server/mod.rs`), and its graceful shutdown waits for
//! every open stream however long that takes. So doudi gives tonic only the age (GOAWAY at `age`) and wraps
//! each accepted connection in [`Bounded`], whose reads and writes fail with `ConnectionAborted` once the
//! connection's deadline (age + grace) has passed or the server's close [`Trigger`] has fired. hyper then drops
//! the connection, every stream on it ends (a cancelled request rolls its transaction back) and the
//! connection task exits.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tonic::transport::server::Connected;

/// A one-way flag shared by many tasks: the server's "draining" (shutdown asked) and "close now" (drain time up).
#[derive(Clone)]
pub struct Trigger {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger { tx: std::sync::Arc::new(watch::channel(false).0) }
    }
}

impl Trigger {
    /// Fire: every [`fired`](Self::fired) future resolves and every connection wrapped with this trigger fails
    /// its next read or write (and any wrapped later at once).
    pub fn fire(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`fire`](Self::fire) was called.
    pub fn is_fired(&self) -> bool {
        *self.tx.borrow()
    }

    /// A future that resolves when [`fire`](Self::fire) is called (at once if it was).
    pub fn fired(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Wrap one accepted connection: it ends at `max_age + grace` after now (when `max_age` is set) or when
    /// [`fire`](Self::fire) fires, whichever comes first.
    pub fn wrap<T>(&self, io: T, max_age: Option<Duration>, grace: Duration) -> Bounded<T> {
        let closed = self.fired();
        let end: Pin<Box<dyn Future<Output = ()> + Send>> = match max_age {
            Some(age) => {
                let deadline = tokio::time::sleep(age + grace);
                Box::pin(async move {
                    tokio::select! {
                        () = deadline => tracing::debug!(?age, ?grace, "connection past max_connection_age + grace: closed"),
                        () = closed => {}
                    }
                })
            }
            None => Box::pin(closed),
        };
        Bounded { io, end, ended: false }
    }
}

/// An accepted connection with an end: see the module documentation.
pub struct Bounded<T> {
    io: T,
    end: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
}

impl<T> Bounded<T> {
    /// `Err(ConnectionAborted)` once the end has come; otherwise registers the waker so the connection task wakes
    /// up (and fails its next read) when it comes.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.ended && self.end.as_mut().poll(cx).is_ready() {
            self.ended = true;
        }
        if self.ended {
            Err(io::Error::new(io::ErrorKind::ConnectionAborted, "connection closed by the hub (age or shutdown)"))
        } else {
            Ok(())
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Bounded<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Bounded<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The peer certificate and address of the wrapped connection, for `Request::peer_certs()`.
impl<T: Connected> Connected for Bounded<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn a_connection_ends_at_age_plus_grace() {
        let (a, mut b) = tokio::io::duplex(64);
        let trigger = Trigger::default();
        let opened = std::time::Instant::now();
        let mut a = trigger.wrap(a, Some(Duration::from_millis(200)), Duration::from_millis(100));
        b.write_all(b"x").await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).await.unwrap(), 1);
        a.write_all(b"y").await.unwrap();
        // A read pending across the deadline (200 + 100 ms) fails when the deadline passes, not before.
        let err = a.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(opened.elapsed() >= Duration::from_millis(300), "{:?}", opened.elapsed());
    }

    #[tokio::test]
    async fn fire_ends_open_connections_and_later_ones() {
        let trigger = Trigger::default();
        let (a, _b) = tokio::io::duplex(64);
        let mut a = trigger.wrap(a, None, Duration::ZERO);
        let pending = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            a.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        trigger.fire();
        let err = pending.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        let (c, _d) = tokio::io::duplex(64);
        let mut c = trigger.wrap(c, None, Duration::ZERO);
        assert!(c.write_all(b"z").await.is_err());
        assert!(trigger.is_fired());
    }
}
