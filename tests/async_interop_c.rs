//! Interop with our own C ABI (`ikcp_*`, driven the way a C program drives
//! it) over real UDP on 127.0.0.1, in both directions.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kcp::ffi::{
    ikcp_create, ikcp_input, ikcp_nodelay, ikcp_recv, ikcp_release, ikcp_send, ikcp_setoutput,
    ikcp_update, ikcp_waitsnd, ikcp_wndsize, ikcpcb,
};
use kcp::runtime::{KcpConfig, KcpListener, KcpStream};
use tokio::time::timeout;

struct OutCtx {
    sock: UdpSocket,
    peer: Option<SocketAddr>,
}

unsafe extern "C" fn output(
    buf: *const c_char,
    len: c_int,
    _kcp: *mut ikcpcb,
    user: *mut c_void,
) -> c_int {
    // SAFETY: `user` is the OutCtx owned by the running CPeer.
    let ctx = unsafe { &*(user as *const OutCtx) };
    let data = unsafe { std::slice::from_raw_parts(buf as *const u8, len as usize) };
    if let Some(peer) = ctx.peer {
        let _ = ctx.sock.send_to(data, peer);
    }
    0
}

/// A C-API KCP endpoint on a blocking UDP socket, driven by one std thread.
struct CPeer {
    kcp: *mut ikcpcb,
    ctx: Box<OutCtx>,
    epoch: Instant,
    /// What `ikcp_input` returned for each datagram it refused.
    refused: Vec<c_int>,
}

impl CPeer {
    fn new(conv: u32, sock: UdpSocket, peer: Option<SocketAddr>) -> CPeer {
        sock.set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        let mut ctx = Box::new(OutCtx { sock, peer });
        let user = &mut *ctx as *mut OutCtx as *mut c_void;
        let kcp = ikcp_create(conv, user);
        assert!(!kcp.is_null());
        unsafe {
            ikcp_setoutput(kcp, Some(output));
            ikcp_nodelay(kcp, 1, 10, 2, 1);
            ikcp_wndsize(kcp, 128, 128);
        }
        CPeer {
            kcp,
            ctx,
            epoch: Instant::now(),
            refused: Vec::new(),
        }
    }

    fn now(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Receives for a moment, feeds the engine and runs its clock.
    fn step(&mut self, buf: &mut [u8]) {
        if let Ok((n, from)) = self.ctx.sock.recv_from(buf) {
            self.ctx.peer.get_or_insert(from);
            let r = unsafe { ikcp_input(self.kcp, buf.as_ptr() as *const c_char, n as c_long) };
            if r < 0 {
                self.refused.push(r);
            }
        }
        unsafe { ikcp_update(self.kcp, self.now()) };
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<Vec<u8>> {
        let n = unsafe {
            ikcp_recv(
                self.kcp,
                buf.as_mut_ptr() as *mut c_char,
                buf.len() as c_int,
            )
        };
        (n >= 0).then(|| buf[..n as usize].to_vec())
    }

    fn send(&mut self, data: &[u8]) {
        let r = unsafe {
            ikcp_send(
                self.kcp,
                data.as_ptr() as *const c_char,
                data.len() as c_int,
            )
        };
        assert!(r >= 0, "ikcp_send returned {r}");
    }

    fn waitsnd(&self) -> c_int {
        unsafe { ikcp_waitsnd(self.kcp) }
    }
}

impl Drop for CPeer {
    fn drop(&mut self) {
        unsafe { ikcp_release(self.kcp) };
    }
}

fn message(i: usize) -> Vec<u8> {
    let len = 1 + (i * 811) % 9000;
    (0..len).map(|k| (k ^ i) as u8).collect()
}

const MESSAGES: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_stream_talks_to_a_c_abi_echo_server() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        let mut peer = CPeer::new(0x00c0_ffee, sock, None);
        let (mut buf, mut msg) = (vec![0u8; 65536], vec![0u8; 1 << 20]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut echoed = 0;
        while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
            peer.step(&mut buf);
            while let Some(m) = peer.recv(&mut msg) {
                peer.send(&m);
                echoed += 1;
            }
        }
        echoed
    });
    let mut client = KcpStream::connect_with_conv(addr, 0x00c0_ffee, KcpConfig::new().fast_mode())
        .await
        .unwrap();
    let run = async {
        let mut bytes = 0;
        for i in 0..MESSAGES {
            client.send(&message(i)).await.unwrap();
        }
        for i in 0..MESSAGES {
            let m = client.recv().await.unwrap();
            assert_eq!(&m[..], &message(i)[..], "message {i}");
            bytes += m.len();
        }
        bytes
    };
    let bytes = timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    stop.store(true, Ordering::Relaxed);
    let echoed = server.join().unwrap();
    assert_eq!(echoed, MESSAGES);
    println!("KcpStream -> C ABI echo server: {MESSAGES} messages, {bytes} bytes verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_abi_client_talks_to_our_listener() {
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::new().fast_mode())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let conv = s.conv();
        while let Ok(m) = s.recv().await {
            s.send(&m).await.unwrap();
        }
        conv
    });
    let client = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut peer = CPeer::new(0x0bad_cafe, sock, Some(addr));
        for i in 0..MESSAGES {
            peer.send(&message(i));
        }
        let (mut buf, mut msg) = (vec![0u8; 65536], vec![0u8; 1 << 20]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = 0;
        let mut bytes = 0;
        while got < MESSAGES && Instant::now() < deadline {
            peer.step(&mut buf);
            while let Some(m) = peer.recv(&mut msg) {
                assert_eq!(m, message(got), "message {got}");
                got += 1;
                bytes += m.len();
            }
        }
        // Let the last acknowledgements go out.
        let until = Instant::now() + Duration::from_millis(200);
        while peer.waitsnd() > 0 && Instant::now() < until {
            peer.step(&mut buf);
        }
        (got, bytes)
    });
    let (got, bytes) = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        got, MESSAGES,
        "C client received {got} of {MESSAGES} echoes"
    );
    server.abort();
    println!("C ABI client -> KcpListener: {got} messages, {bytes} bytes verified");
}

/// The C side of the end-of-stream cases: what it refused, all as unknown
/// commands (-3), at least once (our end-of-stream signal reached it).
fn assert_only_the_signal_was_refused(refused: &[c_int]) {
    assert!(
        !refused.is_empty(),
        "the end-of-stream signal never arrived"
    );
    assert!(refused.iter().all(|&r| r == -3), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_our_stream_towards_a_c_peer_leaves_it_working() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let server = std::thread::spawn(move || {
        let mut peer = CPeer::new(0x00c0_ffee, sock, None);
        let (mut buf, mut msg) = (vec![0u8; 65536], vec![0u8; 1 << 20]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut echoed = 0;
        while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
            peer.step(&mut buf);
            while let Some(m) = peer.recv(&mut msg) {
                peer.send(&m);
                echoed += 1;
            }
        }
        (echoed, std::mem::take(&mut peer.refused))
    });
    let mut client = KcpStream::connect_with_conv(addr, 0x00c0_ffee, KcpConfig::new().fast_mode())
        .await
        .unwrap();
    let run = async {
        for i in 0..MESSAGES {
            client.send(&message(i)).await.unwrap();
        }
        // Everything acknowledged, then the signal the C peer does not know.
        client.close().await.unwrap();
        // It keeps echoing: every echo still arrives after the signal.
        for i in 0..MESSAGES {
            let m = client.recv().await.unwrap();
            assert_eq!(&m[..], &message(i)[..], "message {i}");
        }
        // A raw peer never signals the end: no end of stream here.
        let more = timeout(Duration::from_millis(300), client.recv()).await;
        assert!(more.is_err(), "{more:?}");
    };
    timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    stop.store(true, Ordering::Relaxed);
    let (echoed, refused) = server.join().unwrap();
    assert_eq!(echoed, MESSAGES);
    assert_only_the_signal_was_refused(&refused);
    println!(
        "KcpStream close() -> C ABI peer: {MESSAGES} echoes after close, C peer refused {} \
         signal datagrams with {:?}",
        refused.len(),
        refused[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_client_keeps_every_echo_when_our_server_closes() {
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::new().fast_mode())
        .await
        .unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        for _ in 0..MESSAGES {
            let m = s.recv().await.unwrap();
            s.send(&m).await.unwrap();
        }
        s.close().await.unwrap();
        s
    });
    let client = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut peer = CPeer::new(0x0bad_cafe, sock, Some(addr));
        for i in 0..MESSAGES {
            peer.send(&message(i));
        }
        let (mut buf, mut msg) = (vec![0u8; 65536], vec![0u8; 1 << 20]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = 0;
        while (got < MESSAGES || peer.refused.is_empty()) && Instant::now() < deadline {
            peer.step(&mut buf);
            while let Some(m) = peer.recv(&mut msg) {
                assert_eq!(m, message(got), "message {got}");
                got += 1;
            }
        }
        (got, std::mem::take(&mut peer.refused))
    });
    let (got, refused) = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        got, MESSAGES,
        "C client received {got} of {MESSAGES} echoes"
    );
    assert_only_the_signal_was_refused(&refused);
    let _server_stream = timeout(Duration::from_secs(5), server)
        .await
        .expect("close() did not return")
        .unwrap();
    println!(
        "C ABI client <- KcpListener close(): {got} echoes, C peer refused {} signal datagrams",
        refused.len()
    );
}
