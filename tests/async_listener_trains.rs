//! A listener hands the datagrams of one received train (GRO: several
//! datagrams from one peer in one buffer) to their connections in runs:
//! consecutive datagrams for the same connection travel together. This test
//! receives a scripted train that interleaves two conversations of one
//! peer with a malformed datagram, and checks that every datagram reaches
//! the right connection in order, that the second conversation opens its
//! own connection, and that the counters add up.

mod support;

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use kcp::engine::Kcp;
use kcp::runtime::{KcpConfig, KcpListener, Received, Transport};
use tokio::io::ReadBuf;
use tokio::time::timeout;

const PEER: ([u8; 4], u16) = ([10, 0, 0, 9], 4000);
const PAYLOAD: usize = 100;

/// Receives the scripted buffers, one per call; sends go nowhere.
#[derive(Debug, Default)]
struct Scripted {
    trains: Mutex<VecDeque<(Vec<u8>, usize)>>,
}

impl Scripted {
    /// Queues one train: `datagrams` back to back, each `stride` bytes but
    /// the last.
    fn script<'a>(&self, datagrams: impl IntoIterator<Item = &'a Vec<u8>>, stride: usize) {
        let train = datagrams.into_iter().flatten().copied().collect();
        self.trains.lock().unwrap().push_back((train, stride));
    }
}

impl Transport for Scripted {
    fn poll_send_to(
        &self,
        _cx: &mut Context<'_>,
        buf: &[u8],
        _target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_recv_from(
        &self,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        // Only `poll_recv_many` delivers; after the script, nothing more
        // arrives (the test ends before anything needs a wake-up).
        Poll::Pending
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from(([10, 0, 0, 1], 5000)))
    }

    fn poll_recv_many(
        &self,
        _cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [Received],
    ) -> Poll<io::Result<usize>> {
        let Some((train, stride)) = self.trains.lock().unwrap().pop_front() else {
            return Poll::Pending;
        };
        bufs[0][..train.len()].copy_from_slice(&train);
        meta[0] = Received {
            addr: SocketAddr::from(PEER),
            len: train.len(),
            stride,
        };
        Poll::Ready(Ok(1))
    }
}

/// The datagrams an engine of conversation `conv` sends for `messages`
/// messages of `size` bytes (message `m` filled with `m + 1`), one segment
/// per datagram.
fn datagrams(conv: u32, messages: u8, size: usize) -> Vec<Vec<u8>> {
    let mut k = Kcp::new(conv);
    k.set_nodelay(1, 10, 2, true);
    k.set_mtu(24 + size).unwrap();
    k.set_window_size(256, 256);
    for m in 0..messages {
        k.send(&vec![m + 1; size]).unwrap();
    }
    let mut out = Vec::new();
    k.update(0, &mut |d: &[u8]| out.push(d.to_vec()));
    out
}

#[tokio::test]
async fn a_received_train_reaches_each_connection_in_order() {
    support::init_tracing();
    let (a, b) = (datagrams(11, 4, PAYLOAD), datagrams(22, 4, PAYLOAD));
    assert!(a.iter().chain(&b).all(|d| d.len() == 24 + PAYLOAD));
    let garbage = vec![0xff; 24 + PAYLOAD];
    // The first train opens both connections; in the second, both are known.
    let trains: [&[&Vec<u8>]; 2] = [
        &[&a[0], &b[0]],
        &[&a[1], &b[1], &b[2], &a[2], &garbage, &a[3], &b[3]],
    ];
    let transport = Arc::new(Scripted::default());
    for t in trains {
        transport.script(t.iter().copied(), 24 + PAYLOAD);
    }

    let listener = KcpListener::with_transport(transport.clone(), KcpConfig::fast()).unwrap();
    timeout(Duration::from_secs(10), async {
        let (mut first, _) = listener.accept().await.unwrap();
        let (mut second, _) = listener.accept().await.unwrap();
        assert_eq!((first.conv(), second.conv()), (11, 22));
        for m in 1..=4u8 {
            assert_eq!(
                &first.recv().await.unwrap()[..],
                &[m; PAYLOAD][..],
                "message {m}"
            );
            assert_eq!(
                &second.recv().await.unwrap()[..],
                &[m; PAYLOAD][..],
                "message {m}"
            );
        }
        let st = listener.stats();
        assert_eq!(st.datagrams, 9, "{st:?}");
        assert_eq!(st.dropped_malformed, 1, "{st:?}");
        assert_eq!(st.connections_created, 2, "{st:?}");
        assert_eq!(st.routed, 6, "{st:?}");
        assert_eq!(st.dropped_overload + st.dropped_unknown, 0, "{st:?}");
    })
    .await
    .expect("the train's datagrams did not all arrive");
}

/// Trains long enough to travel in their own receive buffer (more than
/// half of it) arrive whole and in order, train after train, as the
/// listener's buffers are swapped with the pool's spares.
#[tokio::test]
async fn long_trains_for_one_connection_arrive_whole() {
    support::init_tracing();
    const SIZE: usize = 1000;
    let d = datagrams(33, 120, SIZE);
    assert_eq!(d.len(), 120);
    let transport = Arc::new(Scripted::default());
    // One datagram opens the connection; then trains of 40 (40,960 bytes).
    for range in [0..1, 1..41, 41..81, 81..120] {
        transport.script(&d[range], 24 + SIZE);
    }
    let listener = KcpListener::with_transport(transport.clone(), KcpConfig::fast()).unwrap();
    timeout(Duration::from_secs(10), async {
        let (mut s, _) = listener.accept().await.unwrap();
        for m in 1..=120u8 {
            let got = s.recv().await.unwrap();
            assert_eq!(got.len(), SIZE, "message {m}");
            assert!(got.iter().all(|&b| b == m), "message {m}");
        }
        let st = listener.stats();
        // The opening datagram is not routed: it creates the connection.
        assert_eq!((st.datagrams, st.routed), (120, 119), "{st:?}");
        assert_eq!(st.dropped_overload + st.dropped_unknown, 0, "{st:?}");
    })
    .await
    .expect("the trains' datagrams did not all arrive");
}
