//! A steady bulk transfer through `KcpStream` allocates nothing per datagram
//! once warm. This binary counts every allocation of the process (its own
//! global allocator), so it holds this one test only.
//!
//! First both ends are client-style streams over their own UDP sockets on
//! 127.0.0.1 (`connect_with_transport`), so what is counted is the stream,
//! its connection task and the engine; then a client sends to a stream a
//! `KcpListener` accepted, which adds the listener's task routing each
//! datagram to the connection's task.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CHUNK: usize = 64 * 1024;
const MB: usize = 1 << 20;

/// Moves `total` bytes from `tx` to `rx`; returns (allocations, datagrams)
/// counted meanwhile.
async fn transfer(tx: &mut KcpStream, rx: &mut KcpStream, total: usize) -> (u64, u64) {
    let chunk = vec![0x5au8; CHUNK];
    let mut buf = vec![0u8; CHUNK];
    let dgrams_before = tx.stats().datagrams_out + rx.stats().datagrams_out;
    let before = ALLOCS.load(Ordering::Relaxed);
    let writer = async {
        let mut sent = 0;
        while sent < total {
            tx.write_all(&chunk).await.unwrap();
            sent += CHUNK;
        }
    };
    let reader = async {
        let mut got = 0;
        while got < total {
            let n = rx.read(&mut buf).await.unwrap();
            assert!(buf[..n].iter().all(|&b| b == 0x5a));
            got += n;
        }
    };
    tokio::join!(writer, reader);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let dgrams = tx.stats().datagrams_out + rx.stats().datagrams_out - dgrams_before;
    (allocs, dgrams)
}

fn bulk() -> KcpConfig {
    KcpConfig::new().fast_mode().window_size(256, 256)
}

#[test]
fn steady_bulk_transfer_allocates_nothing_per_datagram() {
    // One thread: nothing else in the process allocates meanwhile.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let a: Arc<dyn Transport> = Arc::new(a);
        let b: Arc<dyn Transport> = Arc::new(b);
        let mut tx = KcpStream::connect_with_transport(a, b_addr, 7, bulk()).unwrap();
        let mut rx = KcpStream::connect_with_transport(b, a_addr, 7, bulk()).unwrap();

        let deadline = Duration::from_secs(60);
        tokio::time::timeout(deadline, async {
            transfer(&mut tx, &mut rx, 4 * MB).await; // warm up
            let (allocs, dgrams) = transfer(&mut tx, &mut rx, 16 * MB).await;
            let per_mb = allocs as f64 / 16.0;
            println!(
                "stream to stream, 16 MiB after a 4 MiB warm-up: {allocs} allocations, \
                 {dgrams} datagrams, {per_mb:.1} allocations per MiB"
            );
            assert!(dgrams > 10_000, "{dgrams} datagrams");
            // What remains is per application write (the stream takes a
            // copy of each 64 KiB `write`) and per burst, not per datagram:
            // 256 writes, about 12,000 datagrams, a few hundred allocations.
            assert!(
                allocs * 10 < dgrams,
                "{allocs} allocations for {dgrams} datagrams"
            );
        })
        .await
        .expect("transfer timed out");

        // The same to a listener's accepted stream: routing a datagram to its
        // connection reuses a buffer, so this too is per write, not per datagram.
        let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), bulk())
            .await
            .unwrap();
        let mut client = KcpStream::connect(listener.local_addr(), bulk())
            .await
            .unwrap();
        client.write_all(b"hi").await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut hi = [0u8; 2];
        server.read_exact(&mut hi).await.unwrap();
        tokio::time::timeout(deadline, async {
            transfer(&mut client, &mut server, 4 * MB).await;
            let (allocs, dgrams) = transfer(&mut client, &mut server, 16 * MB).await;
            let per_mb = allocs as f64 / 16.0;
            println!(
                "client to listener's stream, 16 MiB: {allocs} allocations, {dgrams} datagrams, \
                 {per_mb:.1} allocations per MiB"
            );
            assert!(dgrams > 10_000, "{dgrams} datagrams");
            // As above, plus a little: was about 816 per MiB (one per
            // datagram) when each routed datagram had its own allocation.
            assert!(
                per_mb < 100.0,
                "{allocs} allocations for {dgrams} datagrams through the listener"
            );
        })
        .await
        .expect("transfer timed out");
    });
}
