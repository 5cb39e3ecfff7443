//! `cargo bench --bench engine_small_messages`: 1,000 messages of 64 bytes
//! and 100 of 1 KiB through two engines in memory (fast mode, window 128).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[path = "engine_pair.rs"]
mod engine_pair;
use engine_pair::Pair;

fn small_messages(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_small_messages");
    for (count, size) in [(1000usize, 64usize), (100, 1024)] {
        let msg = vec![0x3cu8; size];
        let messages: Vec<&[u8]> = (0..count).map(|_| msg.as_slice()).collect();
        g.throughput(Throughput::Elements(count as u64));
        g.bench_with_input(
            BenchmarkId::new(format!("{size}B"), count),
            &messages,
            |b, messages| b.iter(|| Pair::fast(128).transfer(messages)),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = small_messages
}
criterion_main!(benches);
