//! A transport that shows every datagram to a test before sending it, so a
//! test can watch, lose or hold back what a connection sends.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use kcp::runtime::Transport;
use tokio::io::ReadBuf;

/// What becomes of a datagram about to be sent.
pub enum Verdict {
    /// Sent by the inner transport.
    Pass,
    /// Reported as sent, never delivered.
    Lose,
    /// Not sent now: the send is pending, as on a full socket buffer (the
    /// hook keeps the context's waker to end the wait).
    Wait,
}

type Hook = dyn Fn(&[u8], &mut Context<'_>) -> Verdict + Send + Sync;

/// `inner`, with `hook` deciding about each datagram sent through it.
pub struct Hooked {
    inner: Arc<dyn Transport>,
    hook: Box<Hook>,
}

impl Hooked {
    pub fn new(
        inner: Arc<dyn Transport>,
        hook: impl Fn(&[u8], &mut Context<'_>) -> Verdict + Send + Sync + 'static,
    ) -> Arc<Hooked> {
        Arc::new(Hooked {
            inner,
            hook: Box::new(hook),
        })
    }
}

impl fmt::Debug for Hooked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Transport for Hooked {
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        match (self.hook)(buf, cx) {
            Verdict::Pass => self.inner.poll_send_to(cx, buf, target),
            Verdict::Lose => Poll::Ready(Ok(buf.len())),
            Verdict::Wait => Poll::Pending,
        }
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        self.inner.poll_recv_from(cx, buf)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
