//! Interop with kcp-go (plain mode: no encryption, no FEC) over real UDP on
//! 127.0.0.1, with our end-of-stream signal in both directions: kcp-go
//! drops it as an unknown command and keeps working.
//!
//! kcp-go's side is `benches/go/kcpgo_peer.go`, built from Debian's
//! `golang-go` and `golang-github-xtaci-kcp-dev` (which
//! `scripts/install-test-deps.sh` installs); without them the tests say so
//! in one line and pass.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

mod support;
use support::interop::listener_on_loopback;

const GOPATH: &str = "/usr/share/gocode";

/// kcp-go deployments' settings, as the peer program sets them.
fn config() -> KcpConfig {
    KcpConfig::new()
        .nodelay(true, 10, 2, true)
        .window_size(1024, 1024)
        .mtu(1400)
        .stream_mode(true)
}

/// The byte at `offset` of the stream kcpgo_peer writes and checks.
fn pattern(i: u64) -> u8 {
    ((i.wrapping_mul(31)) ^ (i >> 11)) as u8
}

/// Builds kcpgo_peer once; `None` (with the reason printed) without Go or
/// kcp-go's sources.
fn peer_program() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let kcp_go = PathBuf::from(GOPATH).join("src/github.com/xtaci/kcp-go");
            let go = Command::new("go").arg("version").output();
            if go.is_err() || !kcp_go.is_dir() {
                println!(
                    "kcp-go interop skipped: needs go and {} (Debian: golang-go golang-github-xtaci-kcp-dev)",
                    kcp_go.display()
                );
                return None;
            }
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let out = dir.join("kcpgo-peer");
            let status = Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/go/kcpgo_peer.go"))
                .env("GO111MODULE", "off")
                .env("GOPATH", GOPATH)
                .env("GOCACHE", dir.join("go-cache"))
                .status()
                .expect("go build");
            assert!(status.success(), "go build of kcpgo_peer failed");
            Some(out)
        })
        .clone()
}

/// A kcp-go echo server; killed on drop.
struct GoServer {
    child: Child,
    addr: SocketAddr,
}

impl GoServer {
    fn start(program: &PathBuf) -> GoServer {
        let mut child = Command::new(program)
            .arg("serve")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("ADDR ")
            .unwrap_or_else(|| panic!("kcpgo_peer said {line:?}"))
            .trim()
            .parse()
            .unwrap();
        GoServer { child, addr }
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOTAL: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_our_stream_towards_kcp_go_leaves_it_echoing() {
    let Some(program) = peer_program() else {
        return;
    };
    let server = GoServer::start(&program);
    let client = KcpStream::connect(server.addr, config()).await.unwrap();
    let (mut r, mut w) = client.into_split();
    let writer = tokio::spawn(async move {
        let data: Vec<u8> = (0..TOTAL).map(pattern).collect();
        w.write_all(&data).await.unwrap();
        // Everything acknowledged, then the signal kcp-go does not know.
        w.close().await
    });
    let run = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < TOTAL {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0, "end of stream from kcp-go after {got} bytes");
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, pattern(got + k as u64), "byte {}", got + k as u64);
            }
            got += n as u64;
        }
        writer.await.unwrap().unwrap();
        // kcp-go never signals the end: no end of stream here.
        let more = timeout(Duration::from_millis(300), r.read(&mut buf)).await;
        assert!(more.is_err(), "{more:?}");
    };
    timeout(Duration::from_secs(30), run)
        .await
        .expect("timed out");
    println!("KcpStream close() -> kcp-go server: {TOTAL} bytes echoed and verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kcp_go_client_finishes_its_transfer_when_our_server_closes() {
    let Some(program) = peer_program() else {
        return;
    };
    let listener = listener_on_loopback(config()).await;
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut echoed = 0u64;
        while echoed < TOTAL {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            s.write_all(&buf[..n]).await.unwrap();
            echoed += n as u64;
        }
        s.close().await.unwrap();
        s
    });
    let out = tokio::task::spawn_blocking(move || {
        Command::new(program)
            .args(["client", &addr.to_string(), "bulk", &TOTAL.to_string()])
            .output()
            .unwrap()
    });
    let out = timeout(Duration::from_secs(30), out)
        .await
        .expect("timed out")
        .unwrap();
    assert!(
        out.status.success(),
        "kcp-go client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _stream = timeout(Duration::from_secs(5), server)
        .await
        .expect("close() did not return")
        .unwrap();
    println!(
        "kcp-go client <- KcpListener close(): {}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
}
