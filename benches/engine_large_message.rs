//! `cargo bench --bench engine_large_message`: one message of 16 KiB and one
//! of 64 KiB (fragmented into segments, reassembled) through two engines in
//! memory (fast mode, window 128).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "engine_pair.rs"]
mod engine_pair;
use engine_pair::Pair;

fn large_message(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_large_message");
    for size in [16 * 1024usize, 64 * 1024] {
        let msg = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("one_message", size), &msg, |b, msg| {
            b.iter(|| Pair::fast(128).transfer(&[msg.as_slice()]))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = large_message
}
criterion_main!(benches);
