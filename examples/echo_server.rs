//! A plain KCP echo server on our `KcpListener`, for `kcp-conformance peer`
//! (and any raw KCP client): every message (or stream chunk) comes back as
//! it arrived. Settings are the usual fast mode, the same as the C example
//! `udp_echo_server`: nodelay 1, interval 10 ms, resend 2, congestion control
//! off, windows 128/128, MTU 1400.
//!
//! `cargo run --release --example echo_server -- [ADDR] [--stream] [--secs N]`
//!
//! ADDR defaults to 127.0.0.1:0; the first line on stdout names the address.
//! The server exits after N seconds (default 120).
//!
//! With `--connect ADDR --conv N` it is a client instead (a `KcpStream`, for
//! `kcp-conformance peer --listen`): it sends one message to open the
//! conversation, then echoes.

use std::time::Duration;

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:0".to_string();
    let (mut stream, mut secs) = (false, 120u64);
    let (mut connect, mut conv) = (None::<String>, 0u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--stream" => stream = true,
            "--secs" => secs = args.next().ok_or("--secs needs a number")?.parse()?,
            "--connect" => connect = Some(args.next().ok_or("--connect needs an address")?),
            "--conv" => conv = args.next().ok_or("--conv needs a number")?.parse()?,
            _ if !a.starts_with('-') => addr = a,
            _ => {
                eprintln!(
                    "usage: echo_server [ADDR] [--stream] [--secs N] [--connect ADDR --conv N]"
                );
                std::process::exit(2);
            }
        }
    }
    let config = KcpConfig::new()
        .nodelay(true, 10, 2, true)
        .window_size(128, 128)
        .mtu(1400)
        .stream_mode(stream);
    if let Some(addr) = connect {
        let client = async {
            let mut s = KcpStream::connect_with_conv(addr.parse()?, conv, config).await?;
            println!("echo_server: client of {addr}, conv {conv:#x}");
            s.send(b"hello").await?;
            while let Ok(m) = s.recv().await {
                s.send(&m).await?;
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        };
        if tokio::time::timeout(Duration::from_secs(secs), client)
            .await
            .is_err()
        {
            println!("echo_server: {secs} s are up");
        }
        return Ok(());
    }
    let listener = KcpListener::bind(addr.parse()?, config).await?;
    println!(
        "echo_server: listening on {} ({} mode)",
        listener.local_addr(),
        if stream { "stream" } else { "message" }
    );
    let serve = async {
        loop {
            let (mut s, peer) = listener.accept().await?;
            println!("echo_server: {peer} conv {:#x}", s.conv());
            tokio::spawn(async move {
                while let Ok(m) = s.recv().await {
                    if s.send(&m).await.is_err() {
                        break;
                    }
                }
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(secs), serve).await {
        Ok(r) => r?,
        Err(_) => println!("echo_server: {secs} s are up"),
    }
    Ok(())
}
