//! Runs the window-scaling bulk transfer on one implementation only, for
//! profilers (`perf record`, `valgrind --tool=callgrind`) that need a process
//! doing nothing else:
//!
//! ```text
//! cargo build --profile bench-noabi -p ikcp-bench --example profile_transfer
//! valgrind --tool=callgrind target/bench-noabi/examples/profile_transfer ours 4096 20 2 3
//! ```
//!
//! Arguments: `ours|reference|capi` (our Rust API, upstream's C, our C ABI), window, one-way delay in ticks, loss
//! percent, repetitions (each a fresh pair moving 16,384 messages), message
//! size in bytes (default 1024).

use ikcp_bench::{bulk_over_link, CApi, CEndpoint, Link, Mode, Ours};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| -> usize {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
    };
    let which = args.first().map(String::as_str).unwrap_or("ours");
    let (window, delay, loss, reps) = (arg(1, 4096), arg(2, 20), arg(3, 0), arg(4, 3));
    let size = arg(5, 1024);
    let mode = Mode::fast(window as i32);
    let mut link = Link::new(delay, loss as u64);
    let mut wire = 0;
    for _ in 0..reps {
        wire += match which {
            "reference" | "capi" => {
                let api = if which == "capi" {
                    CApi::ours().expect("build target/release/libkcp.so first")
                } else {
                    CApi::reference()
                };
                let (mut a, mut b) = (CEndpoint::new(api, 1, mode), CEndpoint::new(api, 1, mode));
                bulk_over_link(&mut link, &mut a, &mut b, 16 * 1024, size, window)
            }
            _ => {
                let (mut a, mut b) = (Ours::new(1, mode), Ours::new(1, mode));
                bulk_over_link(&mut link, &mut a, &mut b, 16 * 1024, size, window)
            }
        };
    }
    println!(
        "{which}: window {window}, delay {delay}, loss {loss}%, {reps} x 16,384 messages of {size} B, {wire} bytes on the wire"
    );
}
