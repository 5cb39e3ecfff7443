//! A KCP echo server and client in one process on 127.0.0.1; exits by itself.
//!
//! `cargo run --example simple_echo`

use kcp::runtime::{KcpConfig, KcpListener, KcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Log lines on `RUST_LOG=debug` (e.g. `RUST_LOG=kcp=debug cargo run --example simple_echo`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let listener = KcpListener::bind("127.0.0.1:0".parse().unwrap(), KcpConfig::realtime()).await?;
    let addr = listener.local_addr();
    println!("server listening on {addr}");

    let server = tokio::spawn(async move {
        let (mut stream, peer) = listener.accept().await?;
        println!("server: accepted {peer}, conv {:#x}", stream.conv());
        // Echo until the client goes away (its task ends with the process).
        while let Ok(msg) = stream.recv().await {
            println!("server: echoing {} bytes", msg.len());
            stream.send(&msg).await?;
        }
        Ok::<_, std::io::Error>(())
    });

    let mut client = KcpStream::connect(addr, KcpConfig::new().fast_mode()).await?;
    println!(
        "client: {} -> {addr}, conv {:#x}",
        client.local_addr(),
        client.conv()
    );
    for text in ["hello", "KCP over UDP", "fast and reliable"] {
        client.send(text.as_bytes()).await?;
        let echo = client.recv().await?;
        println!(
            "client: sent {text:?}, got back {:?}",
            String::from_utf8_lossy(&echo)
        );
        assert_eq!(echo.as_ref(), text.as_bytes());
    }
    let st = client.stats();
    println!(
        "client stats: {} datagrams out, {} in, rtt {:?}, rto {:?}, {} retransmissions",
        st.datagrams_out, st.datagrams_in, st.srtt, st.rto, st.retransmissions
    );
    server.abort();
    println!("done");
    Ok(())
}
