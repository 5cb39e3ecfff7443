//! `cargo bench --bench engine_throughput`: 4 MiB of 1 KiB writes through
//! two engines in memory, fast mode, windows of 128 and 1024 segments.
//! Our engine alone; `cargo bench -p ikcp-bench --profile bench-noabi`
//! runs the same kind of work side by side with the reference ikcp.c.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "engine_pair.rs"]
mod engine_pair;
use engine_pair::Pair;

fn throughput(c: &mut Criterion) {
    let chunk = vec![0xa5u8; 1024];
    let messages: Vec<&[u8]> = (0..4096).map(|_| chunk.as_slice()).collect();
    let mut g = c.benchmark_group("engine_throughput");
    g.throughput(Throughput::Bytes(4 << 20));
    for wnd in [128u32, 1024] {
        g.bench_with_input(
            BenchmarkId::new("4MiB_fast_window", wnd),
            &wnd,
            |b, &wnd| b.iter(|| Pair::fast(wnd).transfer(&messages)),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = throughput
}
criterion_main!(benches);
