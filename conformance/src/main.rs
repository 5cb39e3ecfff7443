//! `kcp-conformance`: tests a KCP implementation against the reference
//! `ikcp.c`, through its C ABI (`abi`), over UDP (`peer`), and reads the
//! datagrams of a session (`decode`). See doc/CONFORMANCE.md.

mod abi;
mod decode;
mod layout;
mod peer;
mod record;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Conformance harness for KCP implementations.
///
/// Every mode compares against upstream's ikcp.c (1.x, as shipped by the
/// kcp-io crate and linked into this tool). Exit status: 0 when everything
/// conformed, 1 when a divergence or failed expectation was found, 2 on a
/// usage or setup error.
#[derive(Parser, Debug)]
#[command(name = "kcp-conformance", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Differential test of a shared library exporting the ikcp C ABI.
    ///
    /// Loads PATH.so, runs the lockstep scenario families (traffic, lossy
    /// links, settings churn, hostile input, edge cases, direct field
    /// writes, reentrant callbacks) on it and on the reference at once, and
    /// compares return values, output datagrams, log lines and the public
    /// IKCPCB fields after every call. Each family's first divergence is
    /// shrunk to a minimal call sequence that still diverges.
    Abi(abi::Args),
    /// UDP conformance peer: plays reference KCP (upstream ikcp.c 1.x,
    /// linked into this tool) against a remote running a plain echo.
    ///
    /// Runs a scripted suite (message or stream mode, sizes from 0 B to the
    /// largest message, loss/duplication/reordering on our side, a zero
    /// window, MTU edges, retransmission back-off, a foreign conversation),
    /// checks every echoed byte and what the remote puts on the wire, and
    /// prints a table of what held and what differed from ikcp.c.
    Peer(peer::Args),
    /// Prints KCP datagrams (conv, cmd, frg, wnd, ts, sn, una, len) from a
    /// pcap file of UDP traffic, such as the one `--record` writes.
    Decode(decode::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Abi(a) => abi::run(&a),
        Mode::Peer(a) => peer::run(&a),
        Mode::Decode(a) => decode::run(&a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kcp-conformance: {e}");
            ExitCode::from(2)
        }
    }
}
