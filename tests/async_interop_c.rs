//! Interop with our own C ABI (`ikcp_*`, driven the way a C program drives
//! it) over real UDP on 127.0.0.1, in both directions. Our side is
//! `tests/support/interop.rs`; the C side is `CPeer` below.

use std::ffi::{c_char, c_int, c_long, c_void};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kcp::ffi::{
    ikcp_create, ikcp_input, ikcp_nodelay, ikcp_recv, ikcp_release, ikcp_send, ikcp_setoutput,
    ikcp_update, ikcp_waitsnd, ikcp_wndsize, ikcpcb,
};
use kcp::runtime::{KcpConfig, KcpStream};
use tokio::time::timeout;

mod support;
use support::interop::{
    assert_no_end_of_stream, expect_echoes, listener_on_loopback, send_all, spawn_echo_server,
    spawn_echo_then_close,
};

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
const CONV_OF_OUR_CLIENT: u32 = 0x00c0_ffee;
const CONV_OF_THE_C_CLIENT: u32 = 0x0bad_cafe;

/// A C ABI echo server on 127.0.0.1, on its own thread, until stopped (or
/// 30 s).
struct CEchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<c_int>)>,
}

impl CEchoServer {
    fn start() -> CEchoServer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peer = CPeer::new(CONV_OF_OUR_CLIENT, sock, None);
            let (mut buf, mut msg) = (vec![0u8; 65536], vec![0u8; 1 << 20]);
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut echoed = 0;
            while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
                peer.step(&mut buf);
                while let Some(m) = peer.recv(&mut msg) {
                    peer.send(&m);
                    echoed += 1;
                }
            }
            (echoed, std::mem::take(&mut peer.refused))
        });
        CEchoServer { addr, stop, thread }
    }

    /// Stops it: how many messages it echoed, and what `ikcp_input` refused.
    fn stop(self) -> (usize, Vec<c_int>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// What the C client saw: echoes (checked in order), their bytes, and what
/// `ikcp_input` refused.
struct CClientRun {
    got: usize,
    bytes: usize,
    refused: Vec<c_int>,
}

/// A C ABI client on its own thread: sends `MESSAGES` messages to `addr`
/// and reads the echoes until it has them all, and with `until_refused`
/// until it has also refused a datagram (our end-of-stream signal), or 30 s.
/// Without `until_refused` it then lets its last acknowledgements go out.
fn c_client(addr: SocketAddr, until_refused: bool) -> CClientRun {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut peer = CPeer::new(CONV_OF_THE_C_CLIENT, sock, Some(addr));
    for i in 0..MESSAGES {
        peer.send(&message(i));
    }
    let (mut buf, mut msg) = (vec![0u8; 65536], vec![0u8; 1 << 20]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    let mut bytes = 0;
    while (got < MESSAGES || (until_refused && peer.refused.is_empty()))
        && Instant::now() < deadline
    {
        peer.step(&mut buf);
        while let Some(m) = peer.recv(&mut msg) {
            assert_eq!(m, message(got), "message {got}");
            got += 1;
            bytes += m.len();
        }
    }
    if !until_refused {
        // Let the last acknowledgements go out.
        let until = Instant::now() + Duration::from_millis(200);
        while peer.waitsnd() > 0 && Instant::now() < until {
            peer.step(&mut buf);
        }
    }
    CClientRun {
        got,
        bytes,
        refused: std::mem::take(&mut peer.refused),
    }
}

/// Runs `c_client` on its own thread and waits for it.
async fn run_c_client(addr: SocketAddr, until_refused: bool) -> CClientRun {
    let client = std::thread::spawn(move || c_client(addr, until_refused));
    let run = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    assert_eq!(
        run.got, MESSAGES,
        "C client received {} of {MESSAGES} echoes",
        run.got
    );
    run
}

/// Our client, connected to the C echo server on `addr`.
async fn our_client(addr: SocketAddr) -> KcpStream {
    KcpStream::connect_with_conv(addr, CONV_OF_OUR_CLIENT, KcpConfig::new().fast_mode())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_stream_talks_to_a_c_abi_echo_server() {
    let server = CEchoServer::start();
    let mut client = our_client(server.addr).await;
    let run = async {
        send_all(&mut client, MESSAGES, message).await;
        expect_echoes(&mut client, MESSAGES, message, "").await
    };
    let bytes = timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    let (echoed, _) = server.stop();
    assert_eq!(echoed, MESSAGES);
    println!("KcpStream -> C ABI echo server: {MESSAGES} messages, {bytes} bytes verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_abi_client_talks_to_our_listener() {
    let listener = listener_on_loopback(KcpConfig::new().fast_mode()).await;
    let addr = listener.local_addr();
    let server = spawn_echo_server(listener);
    let CClientRun { got, bytes, .. } = run_c_client(addr, false).await;
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
    let server = CEchoServer::start();
    let mut client = our_client(server.addr).await;
    let run = async {
        send_all(&mut client, MESSAGES, message).await;
        // Everything acknowledged, then the signal the C peer does not know.
        client.close().await.unwrap();
        // It keeps echoing: every echo still arrives after the signal.
        expect_echoes(&mut client, MESSAGES, message, "").await;
        // A raw peer never signals the end: no end of stream here.
        assert_no_end_of_stream(&mut client).await;
    };
    timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    let (echoed, refused) = server.stop();
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
    let listener = listener_on_loopback(KcpConfig::new().fast_mode()).await;
    let addr = listener.local_addr();
    let server = spawn_echo_then_close(listener, MESSAGES);
    let CClientRun { got, refused, .. } = run_c_client(addr, true).await;
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
