// The kcp-tokio README's quick-start client, with only the crate name
// changed (`kcp_tokio` to `kcp`). Start `quick_start_server` first.
//
// `cargo run --example quick_start_client`
//
// Plain comments, not `//!`: `tests/seed_quick_start.rs` includes this file
// in a module and runs it against `quick_start_server.rs`.

use kcp::{KcpConfig, KcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Added to the seed's code: log lines on `RUST_LOG=debug` (e.g. `RUST_LOG=kcp=debug cargo run --example quick_start_client`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let config = KcpConfig::new().fast_mode();
    let mut stream = KcpStream::connect("127.0.0.1:12345".parse()?, config).await?;

    // Send data
    stream.write_all(b"Hello, KCP!").await?;

    // Receive response
    let mut buffer = [0u8; 1024];
    let n = stream.read(&mut buffer).await?;
    println!("Received: {}", String::from_utf8_lossy(&buffer[..n]));

    Ok(())
}
