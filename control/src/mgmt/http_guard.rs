//! Two bounds of the HTTP listener against clients that hold connections rather than use
//! them, in a module of their own:
//! - [`PerSource`]: at most [`MAX_PER_SOURCE`] connections from one address, so one client
//!   cannot take every one of the listener's slots and lock the administrators out;
//! - [`WriteDeadline`]: an answer whose client does not read (a pipeline of requests behind a
//!   tiny receive window) makes no progress; after [`WRITE_STALL`] without any the connection
//!   is closed, instead of holding its slot for the connection's whole lifetime.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Connections from one address at once.
pub const MAX_PER_SOURCE: usize = 16;
/// The longest an answer may wait for its client to read.
pub const WRITE_STALL: Duration = Duration::from_secs(20);

/// Connections per source address.
#[derive(Clone, Debug, Default)]
pub struct PerSource(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection counted against its source; uncounted on drop.
#[derive(Debug)]
pub struct SourceSlot {
    table: PerSource,
    addr: IpAddr,
}

impl PerSource {
    /// Counts a connection from `addr`; `None` when it has [`MAX_PER_SOURCE`] already.
    pub fn take(&self, addr: IpAddr) -> Option<SourceSlot> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(addr).or_insert(0);
        if *n >= MAX_PER_SOURCE {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            table: self.clone(),
            addr,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut map = self
            .table
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.addr);
            }
        }
    }
}

/// A connection whose writes fail once one has made no progress for [`WRITE_STALL`].
#[derive(Debug)]
pub struct WriteDeadline<T> {
    inner: T,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    limit: Duration,
}

impl<T> WriteDeadline<T> {
    /// `inner` with the deadline [`WRITE_STALL`].
    pub fn new(inner: T) -> Self {
        Self::with_limit(inner, WRITE_STALL)
    }

    /// `inner` with deadline `limit`.
    pub fn with_limit(inner: T, limit: Duration) -> Self {
        Self {
            inner,
            stalled: None,
            limit,
        }
    }

    /// What a pending write or flush does: waits, or fails once the deadline passed.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of its answer",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx).map(|r| r.map(|()| 0)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.pending(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_gets_its_share_and_gives_it_back() {
        let table = PerSource::default();
        let a: IpAddr = "192.0.2.1".parse().expect("address");
        let b: IpAddr = "192.0.2.2".parse().expect("address");
        let held: Vec<SourceSlot> = (0..MAX_PER_SOURCE)
            .map(|_| table.take(a).expect("within the cap"))
            .collect();
        assert!(table.take(a).is_none(), "one more from a is refused");
        assert!(table.take(b).is_some(), "another source is not");
        drop(held);
        assert!(table.take(a).is_some(), "slots come back");
    }

    #[test]
    fn a_client_that_reads_nothing_is_cut_off_after_the_deadline() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            use tokio::io::AsyncWriteExt;
            // A pipe of 64 bytes that nobody reads.
            let (server, _client) = tokio::io::duplex(64);
            let mut guarded = WriteDeadline::with_limit(server, Duration::from_millis(100));
            let started = tokio::time::Instant::now();
            let err = guarded
                .write_all(&[0u8; 4096])
                .await
                .expect_err("the write cannot finish");
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= Duration::from_millis(100));
        });
    }
}
