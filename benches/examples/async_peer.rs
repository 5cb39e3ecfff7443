//! One side of a process-to-process benchmark on 127.0.0.1, driven by
//! `scripts/bench-async.py`: a server that echoes every stream, or a client
//! that runs one measurement against it and prints one JSON line.
//!
//! ```text
//! async_peer serve  <impl>                     prints "ADDR <ip:port>", serves until killed
//! async_peer client <impl> <addr> bulk <bytes> echo <bytes>, every byte checked
//! async_peer client <impl> <addr> rtt <count>  64-byte messages at 1,000/s
//! async_peer client <impl> <addr> soak <secs>  fast writer, slow reader: longest gap
//! async_peer client udp|udp-mmsg|udp-gso <addr> blast <bytes>  raw datagrams, one way
//! async_peer client udp-echo <addr> bulk <bytes>  raw datagrams, echoed
//! ```
//!
//! `<impl>`: `ours` (`KcpStream` / `KcpListener`, only the KCP knobs set),
//! `tokio_kcp` (0.9.8 with its flush-on-write options, on sockets with 4 MB
//! buffers), `tcp` (tokio, TCP_NODELAY), and for the raw-UDP ceiling `udp`
//! (one `sendto`/`recvfrom` per datagram), `udp-mmsg` (`sendmmsg` /
//! `recvmmsg`, 32 per call) and `udp-gso` (one `sendmsg` of 46 datagrams
//! with UDP GSO, as `KcpStream` sends bursts; received with `recvmmsg`), and
//! for the raw-UDP echo ceiling `udp-echo` (trains of datagrams sent with GSO,
//! received with GRO and sent straight back, through `quinn-udp` as
//! `KcpStream` does; no reliability, no protocol, no copy; a 1,024-datagram
//! window in flight, as the KCP peers' windows). Every KCP implementation runs in stream mode,
//! MTU 1400, windows 1024/1024, nodelay 1, interval 10 ms, resend 2, no
//! congestion window; kcp-go runs the same protocol from `benches/go`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Datagram size of the raw-UDP ceiling: a full KCP datagram at MTU 1400.
const DATAGRAM: usize = 1400;
/// Socket buffers for the peers that let the application choose (kcp-go
/// deployments set 4 MB).
const SOCKET_BUFFER: usize = 4 << 20;
/// Size of one RTT message.
const RTT_MESSAGE: usize = 64;
/// Upper bound of any one measurement, so a stalled peer cannot hang the run.
const LIMIT: Duration = Duration::from_secs(150);

fn ours_config() -> kcp::runtime::KcpConfig {
    kcp::runtime::KcpConfig::new()
        .nodelay(true, 10, 2, true)
        .window_size(1024, 1024)
        .mtu(1400)
        .stream_mode(true)
}

/// `ours`, or for `ours_window` the same without the adaptive in-flight
/// limit (the window alone), to measure what the limit does.
fn ours_config_for(imp: &str) -> kcp::runtime::KcpConfig {
    ours_config().adaptive_inflight(imp != "ours_window")
}

fn tokio_kcp_config() -> tokio_kcp::KcpConfig {
    tokio_kcp::KcpConfig {
        mtu: 1400,
        nodelay: tokio_kcp::KcpNoDelayConfig::fastest(),
        wnd_size: (1024, 1024),
        stream: true,
        // Its own low-latency options: flush on write and after input
        // (otherwise it waits for its next 10 ms tick).
        flush_write: true,
        flush_acks_input: true,
        ..Default::default()
    }
}

/// Every test stream is a sequence of 8-byte little-endian words, word `w`
/// being `w * PATTERN_MUL` (odd, so no two positions of a stream hold the
/// same word): a lost, repeated or misplaced byte is caught. The words are
/// filled and checked a word at a time, so the harness costs little next to
/// the transport it measures (a byte-at-a-time check took a third of the
/// client's CPU in the bulk echo).
const PATTERN_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

fn word(w: u64) -> u64 {
    w.wrapping_mul(PATTERN_MUL)
}

fn pattern(i: u64) -> u8 {
    word(i / 8).to_le_bytes()[(i % 8) as usize]
}

/// How many bytes of `len` come before the first word boundary at `offset`.
fn head_len(offset: u64, len: usize) -> usize {
    ((8 - offset % 8) % 8).min(len as u64) as usize
}

fn fill(buf: &mut [u8], offset: u64) {
    let len = buf.len();
    let (head, rest) = buf.split_at_mut(head_len(offset, len));
    for (k, b) in head.iter_mut().enumerate() {
        *b = pattern(offset + k as u64);
    }
    let first_word = (offset + head.len() as u64) / 8;
    let mut words = rest.chunks_exact_mut(8);
    for (w, c) in (first_word..).zip(&mut words) {
        c.copy_from_slice(&word(w).to_le_bytes());
    }
    let tail = words.into_remainder();
    let tail_at = offset + (len - tail.len()) as u64;
    for (k, b) in tail.iter_mut().enumerate() {
        *b = pattern(tail_at + k as u64);
    }
}

fn check(buf: &[u8], offset: u64) {
    let (head, rest) = buf.split_at(head_len(offset, buf.len()));
    let first_word = (offset + head.len() as u64) / 8;
    let mut words = rest.chunks_exact(8);
    // Differences are gathered without branching; the slow scan below only
    // runs to name the first wrong byte.
    let mut diff = 0u64;
    for (w, c) in (first_word..).zip(&mut words) {
        diff |= u64::from_le_bytes(c.try_into().unwrap()) ^ word(w);
    }
    let tail = words.remainder();
    let tail_at = offset + (buf.len() - tail.len()) as u64;
    let edges = head.iter().zip(offset..).chain(tail.iter().zip(tail_at..));
    for (b, i) in edges {
        diff |= u64::from(b ^ pattern(i));
    }
    if diff == 0 {
        return;
    }
    for (k, b) in buf.iter().enumerate() {
        if *b != pattern(offset + k as u64) {
            eprintln!("corrupt byte at offset {}", offset + k as u64);
            std::process::exit(3);
        }
    }
}

fn bail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("async_peer: {what}: {e}");
    std::process::exit(2)
}

/// Sets SO_SNDBUF and SO_RCVBUF (the kernel may grant less).
fn set_buffers(fd: std::os::fd::RawFd, bytes: usize) {
    let v = bytes as libc::c_int;
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: `fd` is an open socket; the option value is a c_int that
        // outlives the call.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

fn udp_socket(bind: &str) -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind(bind).unwrap_or_else(|e| bail("bind", e));
    set_buffers(s.as_raw_fd(), SOCKET_BUFFER);
    s
}

trait Duplex: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Retransmissions so far (all, and those on a timeout), where the
    /// implementation counts them: a bulk figure reached by resending is
    /// reported as such.
    fn retransmissions(&self) -> Option<(u64, u64)> {
        None
    }

    /// The in-flight limit at the end, as JSON fields, where there is one.
    fn inflight(&self) -> Option<String> {
        None
    }
}
impl Duplex for kcp::runtime::KcpStream {
    fn retransmissions(&self) -> Option<(u64, u64)> {
        let st = self.stats();
        Some((st.retransmissions, st.lost_segments))
    }

    fn inflight(&self) -> Option<String> {
        let st = self.stats();
        let min_rtt = st.min_rtt.map_or(-1.0, |r| r.as_secs_f64() * 1e6);
        let rate = st.delivery_rate.map_or(-1.0, |r| r as f64 / 1e6);
        Some(format!(
            ", \"inflight_limit\": {}, \"min_rtt_us\": {min_rtt:.1}, \"delivery_mb_per_s\": {rate:.1}",
            st.inflight_limit_segments
        ))
    }
}
impl Duplex for tokio_kcp::KcpStream {}
impl Duplex for tokio::net::TcpStream {}

// ------------------------------------------------------------------ servers

async fn echo<S: Duplex>(mut s: S) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("ADDR {addr}");
    std::io::stdout().flush().unwrap();
}

async fn serve(imp: &str) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    match imp {
        "ours" | "ours_window" => {
            let l = kcp::runtime::KcpListener::bind(any, ours_config_for(imp))
                .await
                .unwrap_or_else(|e| bail("bind", e));
            announce(l.local_addr());
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(echo(s));
            }
        }
        "tokio_kcp" => {
            let udp = tokio::net::UdpSocket::from_std(nonblocking(udp_socket("127.0.0.1:0")))
                .unwrap_or_else(|e| bail("socket", e));
            let mut l = tokio_kcp::KcpListener::from_socket(tokio_kcp_config(), udp)
                .await
                .unwrap_or_else(|e| bail("bind", e));
            announce(l.local_addr().unwrap());
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(echo(s));
            }
        }
        "tcp" => {
            let l = tokio::net::TcpListener::bind(any)
                .await
                .unwrap_or_else(|e| bail("bind", e));
            announce(l.local_addr().unwrap());
            while let Ok((s, _)) = l.accept().await {
                s.set_nodelay(true).unwrap();
                tokio::spawn(echo(s));
            }
        }
        "udp-echo" => {
            let s = udp_socket("127.0.0.1:0");
            announce(s.local_addr().unwrap());
            tokio::task::spawn_blocking(move || udp_echo_server(s))
                .await
                .unwrap();
        }
        "udp" | "udp-mmsg" | "udp-gso" => {
            let s = udp_socket("127.0.0.1:0");
            announce(s.local_addr().unwrap());
            let batched = imp != "udp";
            tokio::task::spawn_blocking(move || udp_sink(s, batched))
                .await
                .unwrap();
        }
        _ => bail("unknown implementation", imp),
    }
}

fn nonblocking(s: std::net::UdpSocket) -> std::net::UdpSocket {
    s.set_nonblocking(true).unwrap();
    s
}

/// Counts datagrams from the first one to a 1-byte end marker, then answers
/// the sender with (bytes, nanoseconds) and starts over.
fn udp_sink(s: std::net::UdpSocket, batched: bool) {
    const BATCH: usize = 32;
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut bytes = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    loop {
        let got: Vec<(usize, SocketAddr)> = if batched {
            recv_mmsg(s.as_raw_fd(), &mut bufs)
        } else {
            match s.recv_from(&mut bufs[0]) {
                Ok((n, from)) => vec![(n, from)],
                Err(e) => bail("recv", e),
            }
        };
        for (n, from) in got {
            if n == 1 {
                let nanos = first.map_or(0, |f| last.duration_since(f).as_nanos() as u64);
                let mut answer = [0u8; 16];
                answer[..8].copy_from_slice(&bytes.to_le_bytes());
                answer[8..].copy_from_slice(&nanos.to_le_bytes());
                let _ = s.send_to(&answer, from);
                bytes = 0;
                first = None;
            } else if n > 1 {
                last = Instant::now();
                first.get_or_insert(last);
                bytes += n as u64;
            }
        }
    }
}

fn sockaddr_v4(a: &libc::sockaddr_in) -> SocketAddr {
    SocketAddr::from((
        std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
        u16::from_be(a.sin_port),
    ))
}

/// One blocking `recvmmsg`: length and sender of each datagram.
fn recv_mmsg(fd: std::os::fd::RawFd, bufs: &mut [[u8; 2048]]) -> Vec<(usize, SocketAddr)> {
    let n = bufs.len();
    // SAFETY: zeroed C structs are valid; each iovec points into `bufs`,
    // each msghdr at its iovec and address, all alive during the call.
    unsafe {
        let mut iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let mut addrs: Vec<libc::sockaddr_in> = vec![std::mem::zeroed(); n];
        let mut msgs: Vec<libc::mmsghdr> = vec![std::mem::zeroed(); n];
        for k in 0..n {
            msgs[k].msg_hdr.msg_iov = &mut iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            msgs[k].msg_hdr.msg_name = (&mut addrs[k] as *mut libc::sockaddr_in).cast();
            msgs[k].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        }
        let got = libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            n as u32,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        );
        if got < 0 {
            bail("recvmmsg", io::Error::last_os_error());
        }
        msgs[..got as usize]
            .iter()
            .zip(&addrs)
            .map(|(m, a)| (m.msg_len as usize, sockaddr_v4(a)))
            .collect()
    }
}

/// One `sendmmsg` of `count` copies of `buf` to `to`; returns how many went.
fn send_mmsg(fd: std::os::fd::RawFd, buf: &[u8], count: usize, to: &libc::sockaddr_in) -> usize {
    // SAFETY: as in recv_mmsg; the kernel only reads the buffers.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut msgs: Vec<libc::mmsghdr> = vec![std::mem::zeroed(); count];
        for m in msgs.iter_mut() {
            m.msg_hdr.msg_iov = &mut iov;
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_name = (to as *const libc::sockaddr_in as *mut libc::sockaddr_in).cast();
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        }
        let sent = libc::sendmmsg(fd, msgs.as_mut_ptr(), count as u32, 0);
        if sent < 0 {
            0
        } else {
            sent as usize
        }
    }
}

/// Datagrams per GSO send: as many 1400-byte datagrams as fit in 64 KB.
const GSO_SEGMENTS: usize = 46;

/// One `sendmsg` of `train` as back-to-back `DATAGRAM`-byte datagrams
/// (UDP GSO); whether it went.
fn send_gso(fd: std::os::fd::RawFd, train: &[u8], to: &libc::sockaddr_in) -> bool {
    // SAFETY: CMSG_SPACE is arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: the iovec, address and control buffer outlive the call; the
    // control buffer is u64-aligned and CMSG_SPACE bytes long, so the first
    // header and its u16 payload fit.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: train.as_ptr() as *mut libc::c_void,
            iov_len: train.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (to as *const libc::sockaddr_in as *mut libc::sockaddr_in).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), DATAGRAM as u16);
        libc::sendmsg(fd, &msg, 0) >= 0
    }
}

/// Sends every train of datagrams it receives (GRO) straight back to its
/// sender, as one GSO send of the same datagrams, from the receive buffer.
fn udp_echo_server(s: std::net::UdpSocket) {
    let s = nonblocking(s);
    let state =
        quinn_udp::UdpSocketState::new((&s).into()).unwrap_or_else(|e| bail("udp state", e));
    let mut trains = Trains::new();
    loop {
        let Some(n) = trains.recv(&s, &state, -1) else {
            continue;
        };
        for (buf, m) in trains.storage.iter().zip(&trains.meta[..n]) {
            send_train(&s, &state, &buf[..m.len], m.stride, m.addr);
        }
    }
}

/// Receive buffers for whole trains of datagrams (GRO) and what the latest
/// receive put in them.
struct Trains {
    storage: [Vec<u8>; 8],
    meta: [quinn_udp::RecvMeta; 8],
}

impl Trains {
    fn new() -> Self {
        Trains {
            storage: std::array::from_fn(|_| vec![0u8; 65_536]),
            meta: [quinn_udp::RecvMeta::default(); 8],
        }
    }

    /// Waits at most `timeout_ms` (-1: no limit) for trains, then receives
    /// a batch; how many buffers it filled (0 after a spurious wake-up), or
    /// `None` when the wait timed out.
    fn recv(
        &mut self,
        s: &std::net::UdpSocket,
        state: &quinn_udp::UdpSocketState,
        timeout_ms: libc::c_int,
    ) -> Option<usize> {
        if !wait_for(s, libc::POLLIN, timeout_ms) {
            return None;
        }
        let mut bufs = self.storage.each_mut().map(|b| io::IoSliceMut::new(b));
        match state.recv(s.into(), &mut bufs, &mut self.meta) {
            Ok(n) => Some(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                Some(0)
            }
            Err(e) => bail("recv", e),
        }
    }
}

/// Waits until the nonblocking socket `s` is ready for `events`, at most
/// `timeout_ms` (-1: no limit); whether it is. (quinn-udp's receive asks
/// for a whole batch, which a blocking socket would wait to fill.)
fn wait_for(s: &std::net::UdpSocket, events: libc::c_short, timeout_ms: libc::c_int) -> bool {
    let mut fd = libc::pollfd {
        fd: s.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut fd, 1, timeout_ms) > 0 }
}

/// One GSO send of `train` (datagrams of `stride` bytes, the last maybe
/// shorter), in pieces of at most what the socket takes per send.
fn send_train(
    s: &std::net::UdpSocket,
    state: &quinn_udp::UdpSocketState,
    train: &[u8],
    stride: usize,
    to: SocketAddr,
) {
    let stride = stride.max(1);
    let per_send = state.max_gso_segments().max(1).min(65_000 / stride) * stride;
    for piece in train.chunks(per_send) {
        let transmit = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents: piece,
            segment_size: (piece.len() > stride).then_some(stride),
            src_ip: None,
        };
        // A full socket buffer waits; a refusal is a lost train.
        loop {
            match state.send(s.into(), &transmit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_for(s, libc::POLLOUT, -1);
                }
                _ => break,
            }
        }
    }
}

/// Echoes `total` bytes through a `udp-echo` server: trains of full
/// datagrams, at most a 1,024-datagram window unanswered; every byte that
/// comes back is counted (none is resent: a lost datagram shows as less
/// than all delivered). Prints the bytes back and the time until the last.
fn udp_echo_client(addr: SocketAddr, total: u64) -> String {
    use std::sync::{Arc, Condvar, Mutex};
    const WINDOW: u64 = 1024 * DATAGRAM as u64;
    let s = udp_socket("127.0.0.1:0");
    s.connect(addr).unwrap_or_else(|e| bail("connect", e));
    let s = nonblocking(s);
    let state =
        quinn_udp::UdpSocketState::new((&s).into()).unwrap_or_else(|e| bail("udp state", e));
    let (s, state) = (Arc::new(s), Arc::new(state));
    // Bytes back so far, and whether the receiver gave up; the sender
    // sleeps on the condition variable while its window is full.
    let back = Arc::new((Mutex::new((0u64, false)), Condvar::new()));
    let start = Instant::now();
    let receiver = {
        let (s, state, back) = (s.clone(), state.clone(), back.clone());
        std::thread::spawn(move || {
            let mut trains = Trains::new();
            let mut got = 0u64;
            let mut last = start;
            while got < total {
                // Half a second without an answer: the rest was lost.
                let Some(n) = trains.recv(&s, &state, 500) else {
                    break;
                };
                if n > 0 {
                    got += trains.meta[..n].iter().map(|m| m.len as u64).sum::<u64>();
                    last = Instant::now();
                    back.0.lock().unwrap().0 = got;
                    back.1.notify_one();
                }
            }
            back.0.lock().unwrap().1 = true;
            back.1.notify_one();
            (got, last.duration_since(start))
        })
    };
    let train = vec![0x5au8; DATAGRAM * GSO_SEGMENTS];
    let mut sent = 0u64;
    while sent < total {
        {
            let (lock, cvar) = &*back;
            let mut st = lock.lock().unwrap();
            while sent - st.0 >= WINDOW && !st.1 {
                st = cvar.wait(st).unwrap();
            }
            if st.1 {
                break;
            }
        }
        let n = (total - sent).min(train.len() as u64) as usize;
        send_train(&s, &state, &train[..n], DATAGRAM, addr);
        sent += n as u64;
    }
    let (got, secs) = receiver.join().unwrap();
    format!(
        "{{\"bytes_sent\": {sent}, \"bytes\": {got}, \"secs\": {:.6}}}",
        secs.as_secs_f64()
    )
}

// ------------------------------------------------------------------ clients

async fn connect(imp: &str, addr: SocketAddr) -> Box<dyn Duplex> {
    match imp {
        "ours" | "ours_window" => Box::new(
            kcp::runtime::KcpStream::connect(addr, ours_config_for(imp))
                .await
                .unwrap_or_else(|e| bail("connect", e)),
        ),
        "tokio_kcp" => {
            let udp = tokio::net::UdpSocket::from_std(nonblocking(udp_socket("127.0.0.1:0")))
                .unwrap_or_else(|e| bail("socket", e));
            Box::new(
                tokio_kcp::KcpStream::connect_with_socket(&tokio_kcp_config(), udp, addr)
                    .await
                    .unwrap_or_else(|e| bail("connect", e)),
            )
        }
        "tcp" => {
            let s = tokio::net::TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| bail("connect", e));
            s.set_nodelay(true).unwrap();
            Box::new(s)
        }
        _ => bail("unknown implementation", imp),
    }
}

/// Echo of `total` bytes: writer and reader run at once; seconds from the
/// first write to the last byte back.
async fn bulk(s: Box<dyn Duplex>, total: u64) -> String {
    let (mut r, mut w) = tokio::io::split(s);
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut off = 0u64;
        while off < total {
            let n = (total - off).min(chunk.len() as u64) as usize;
            fill(&mut chunk[..n], off);
            w.write_all(&chunk[..n])
                .await
                .unwrap_or_else(|e| bail("write", e));
            off += n as u64;
        }
        w
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    while got < total {
        let n = r.read(&mut buf).await.unwrap_or_else(|e| bail("read", e));
        if n == 0 {
            bail("read", "stream ended early");
        }
        check(&buf[..n], got);
        got += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    let s = r.unsplit(writer.await.unwrap());
    let resent = s
        .retransmissions()
        .map_or(String::new(), |(all, timeouts)| {
            format!(", \"retransmissions\": {all}, \"timeouts\": {timeouts}")
        });
    let inflight = s.inflight().unwrap_or_default();
    format!("{{\"bytes\": {total}, \"secs\": {secs:.6}{resent}{inflight}}}")
}

/// `count` 64-byte messages at a steady 1,000/s, each carrying its send
/// time; round trip of each from its echo.
async fn rtt(s: Box<dyn Duplex>, count: usize) -> String {
    let (mut r, mut w) = tokio::io::split(s);
    let epoch = Instant::now();
    let writer = tokio::spawn(async move {
        let mut msg = [0u8; RTT_MESSAGE];
        for i in 0..count {
            tokio::time::sleep_until((epoch + Duration::from_millis(i as u64)).into()).await;
            let sent = epoch.elapsed().as_nanos() as u64;
            msg[..8].copy_from_slice(&sent.to_le_bytes());
            msg[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            w.write_all(&msg).await.unwrap_or_else(|e| bail("write", e));
            w.flush().await.ok();
        }
        w
    });
    // A warm-up tenth is left out of the statistics.
    let warmup = count / 10;
    let mut samples = Vec::with_capacity(count);
    let mut msg = [0u8; RTT_MESSAGE];
    for i in 0..count {
        r.read_exact(&mut msg)
            .await
            .unwrap_or_else(|e| bail("read", e));
        let now = epoch.elapsed().as_nanos() as u64;
        let sent = u64::from_le_bytes(msg[..8].try_into().unwrap());
        let index = u64::from_le_bytes(msg[8..16].try_into().unwrap());
        if index != i as u64 {
            bail("rtt", format!("echo {index} arrived as number {i}"));
        }
        if i >= warmup {
            samples.push((now - sent) as f64 / 1e3);
        }
    }
    let _w = writer.await.unwrap();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "{{\"p50_us\": {:.1}, \"p99_us\": {:.1}, \"max_us\": {:.1}, \"samples\": {}}}",
        at(0.5),
        at(0.99),
        samples[samples.len() - 1],
        samples.len()
    )
}

/// A writer as fast as the stream lets it for `secs`, and a reader that
/// takes at most 8 KB every 2 ms (about 4 MB/s), so windows keep closing and
/// reopening. Reports the longest time between two reads that returned data.
async fn soak(s: Box<dyn Duplex>, secs: f64) -> String {
    let (mut r, mut w) = tokio::io::split(s);
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let writer = tokio::spawn(async move {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut off = 0u64;
        while Instant::now() < until {
            fill(&mut chunk, off);
            if w.write_all(&chunk).await.is_err() {
                break;
            }
            off += chunk.len() as u64;
        }
    });
    let mut buf = vec![0u8; 8 * 1024];
    let mut got = 0u64;
    let mut last = Instant::now();
    let mut longest = Duration::ZERO;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let read = tokio::time::timeout_at(until.into(), r.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(0)) => bail("read", "stream ended early"),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => bail("read", e),
            Err(_) => break,
        };
        check(&buf[..n], got);
        got += n as u64;
        let now = Instant::now();
        longest = longest.max(now - last);
        last = now;
    }
    longest = longest.max(Instant::now().min(until) - last);
    writer.abort();
    format!(
        "{{\"secs\": {secs}, \"bytes\": {got}, \"longest_gap_ms\": {:.1}}}",
        longest.as_secs_f64() * 1e3
    )
}

/// Raw datagrams of `DATAGRAM` bytes, `total` bytes' worth, as fast as the
/// socket takes them; the sink measures what arrived and over how long.
fn blast(addr: SocketAddr, total: u64, batched: bool, gso: bool) -> String {
    let s = udp_socket("127.0.0.1:0");
    let buf = [0x5au8; DATAGRAM];
    let train = vec![0x5au8; DATAGRAM * GSO_SEGMENTS];
    let count = total.div_ceil(DATAGRAM as u64) as usize;
    let SocketAddr::V4(v4) = addr else {
        bail("blast", "IPv4 only")
    };
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let start = Instant::now();
    let mut sent = 0;
    while sent < count {
        if gso {
            let n = (count - sent).min(GSO_SEGMENTS);
            if send_gso(s.as_raw_fd(), &train[..n * DATAGRAM], &to) {
                sent += n;
            }
        } else if batched {
            sent += send_mmsg(s.as_raw_fd(), &buf, (count - sent).min(32), &to);
        } else if s.send_to(&buf, addr).is_ok() {
            sent += 1;
        }
    }
    let send_secs = start.elapsed().as_secs_f64();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut answer = [0u8; 64];
    for _ in 0..500 {
        s.send_to(&[0xff], addr).unwrap();
        if let Ok((16, _)) = s.recv_from(&mut answer) {
            let bytes = u64::from_le_bytes(answer[..8].try_into().unwrap());
            let nanos = u64::from_le_bytes(answer[8..16].try_into().unwrap());
            return format!(
                "{{\"bytes_sent\": {}, \"bytes\": {bytes}, \"secs\": {:.6}, \"send_secs\": {send_secs:.6}}}",
                count * DATAGRAM,
                nanos as f64 / 1e9
            );
        }
    }
    bail("blast", "the sink never answered")
}

async fn client(imp: &str, addr: SocketAddr, test: &str, arg: &str) -> String {
    if test == "blast" {
        let total: u64 = arg.parse().unwrap_or_else(|e| bail("bytes", e));
        let (batched, gso) = (imp == "udp-mmsg", imp == "udp-gso");
        return tokio::task::spawn_blocking(move || blast(addr, total, batched, gso))
            .await
            .unwrap();
    }
    if imp == "udp-echo" {
        let total: u64 = arg.parse().unwrap_or_else(|e| bail("bytes", e));
        return tokio::task::spawn_blocking(move || udp_echo_client(addr, total))
            .await
            .unwrap();
    }
    let s = connect(imp, addr).await;
    match test {
        "bulk" => bulk(s, arg.parse().unwrap_or_else(|e| bail("bytes", e))).await,
        "rtt" => rtt(s, arg.parse().unwrap_or_else(|e| bail("count", e))).await,
        "soak" => soak(s, arg.parse().unwrap_or_else(|e| bail("secs", e))).await,
        _ => bail("unknown test", test),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| bail("usage", "see the header of benches/examples/async_peer.rs"))
    };
    // What `#[tokio::main]` builds: a multi-thread runtime, one worker per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match arg(0) {
        "serve" => rt.block_on(serve(arg(1))),
        "client" => {
            let addr: SocketAddr = arg(2).parse().unwrap_or_else(|e| bail("address", e));
            let (imp, test, n) = (arg(1).to_owned(), arg(3).to_owned(), arg(4).to_owned());
            let out = rt.block_on(async move {
                tokio::time::timeout(LIMIT, client(&imp, addr, &test, &n))
                    .await
                    .unwrap_or_else(|_| bail("client", "time limit exceeded"))
            });
            println!("{out}");
            // Background tasks (linger, keep-alives) are not waited for.
            std::process::exit(0);
        }
        other => bail("unknown mode", other),
    }
}
