// The kcp-tokio README's quick-start echo server, with only the crate name
// changed (`kcp_tokio` to `kcp`). Serves until killed.
//
// `cargo run --example quick_start_server`
//
// Plain comments, not `//!`: `tests/seed_quick_start.rs` includes this file
// in a module and runs it with `quick_start_client.rs`.

use kcp::{KcpConfig, KcpListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// The seed's `accept` takes `&mut self`, ours `&self`: its `let mut listener`
// still compiles, and stays as written.
#[allow(unused_mut)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Added to the seed's code: log lines on `RUST_LOG=debug` (e.g. `RUST_LOG=kcp=debug cargo run --example quick_start_server`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let config = KcpConfig::realtime();
    let mut listener = KcpListener::bind("127.0.0.1:12345".parse()?, config).await?;

    println!("Server listening on 127.0.0.1:12345");

    while let Ok((mut stream, addr)) = listener.accept().await {
        println!("New connection from {}", addr);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let _ = stream.write_all(&buf[..n]).await;
            }
        });
    }

    Ok(())
}
