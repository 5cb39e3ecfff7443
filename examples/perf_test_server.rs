//! KCP echo server for `perf_test_client`.
//!
//! `cargo run --release --example perf_test_server -- 127.0.0.1:4000 fast`
//!
//! Presets: normal, fast, turbo, gaming, realtime, file. Messages are echoed
//! as they come (message mode, whatever the preset says).

use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener};

fn preset(name: &str) -> Option<KcpConfig> {
    Some(match name {
        "normal" => KcpConfig::normal(),
        "fast" => KcpConfig::new().fast_mode(),
        "turbo" => KcpConfig::turbo(),
        "gaming" => KcpConfig::gaming(),
        "realtime" => KcpConfig::realtime(),
        "file" => KcpConfig::file_transfer(),
        _ => return None,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Log lines on `RUST_LOG=debug` (e.g. `RUST_LOG=kcp=debug cargo run --example perf_test_server`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(name)) = (args.first(), args.get(1)) else {
        eprintln!(
            "usage: perf_test_server <addr> <normal|fast|turbo|gaming|realtime|file> [seconds]"
        );
        std::process::exit(2);
    };
    let Some(config) = preset(name) else {
        eprintln!("unknown preset {name:?}");
        std::process::exit(2);
    };
    // Serve for a bounded time (default: until killed).
    let limit = args
        .get(2)
        .map(|s| s.parse::<u64>())
        .transpose()?
        .map(Duration::from_secs);
    let config = config
        .stream_mode(false)
        .idle_timeout(Some(Duration::from_secs(10)));
    let listener = KcpListener::bind(addr.parse()?, config).await?;
    println!(
        "perf_test_server: {name} preset on {}",
        listener.local_addr()
    );
    let serve = async {
        loop {
            let (mut s, peer) = listener.accept().await?;
            println!("client {peer} connected (conv {:#x})", s.conv());
            tokio::spawn(async move {
                while let Ok(m) = s.recv().await {
                    if s.send(&m).await.is_err() {
                        break;
                    }
                }
                let st = s.stats();
                println!(
                    "client {peer} gone: {} bytes in, {} bytes out, {} retransmissions",
                    st.bytes_received, st.bytes_sent, st.retransmissions
                );
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    match limit {
        Some(d) => {
            let _ = tokio::time::timeout(d, serve).await;
        }
        None => serve.await?,
    }
    println!("listener stats: {:?}", listener.stats());
    Ok(())
}
