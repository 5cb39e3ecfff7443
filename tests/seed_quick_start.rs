//! The kcp-tokio README's quick start, run as written (crate name aside):
//! `examples/quick_start_server.rs` serves on 127.0.0.1:12345 and
//! `examples/quick_start_client.rs` sends "Hello, KCP!" and reads the echo.
//! Both files are included here unchanged and their `main`s called.

mod support;

use std::time::{Duration, Instant};

type MainResult = Result<(), Box<dyn std::error::Error>>;

/// The example's items, plus a `run` beside its private `main`.
mod server {
    include!("../examples/quick_start_server.rs");
    pub fn run() -> super::MainResult {
        main()
    }
}

mod client {
    include!("../examples/quick_start_client.rs");
    pub fn run() -> super::MainResult {
        main()
    }
}

fn kind_of(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    e.downcast_ref::<kcp::KcpError>().map(|k| k.kind())
}

#[test]
fn seed_quick_start_client_talks_to_seed_quick_start_server() {
    support::init_tracing();
    // The port is the seed's fixed 12345: another run of this test on the
    // same machine may hold it for a moment, so wait for it to free up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let server = loop {
        let server =
            std::thread::spawn(|| server::run().map_err(|e| (kind_of(&*e), e.to_string())));
        std::thread::sleep(Duration::from_millis(200));
        if !server.is_finished() {
            break server;
        }
        match server.join().unwrap() {
            Err((Some(std::io::ErrorKind::AddrInUse), _)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(500));
            }
            other => panic!("quick-start server stopped: {other:?}"),
        }
    };
    // The client returns Ok only after its echo came back.
    let started = Instant::now();
    client::run().expect("quick-start client");
    println!("quick start echoed in {:?}", started.elapsed());
    // The server serves until the process ends, as in the seed.
    assert!(!server.is_finished());
}

/// The seed's module path names the very same types (a compile-time check).
#[test]
fn async_kcp_path_names_the_same_types() {
    support::init_tracing();
    fn same_stream(s: kcp::async_kcp::KcpStream) -> kcp::KcpStream {
        s
    }
    fn same_listener(l: kcp::async_kcp::KcpListener) -> kcp::runtime::KcpListener {
        l
    }
    fn same_config(c: kcp::KcpConfig) -> kcp::async_kcp::KcpConfig {
        c
    }
    let _ = (same_stream, same_listener);
    assert_eq!(same_config(kcp::KcpConfig::new()), kcp::KcpConfig::new());
    let e: kcp::Result<()> = Err(kcp::KcpError::Buffer { len: 2, max: 1 });
    assert!(e.is_err());
}
