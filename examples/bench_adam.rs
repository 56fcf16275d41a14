//! The optimizer step of the CPU training step (`FlatAdam`) on the default model's
//! 249,429 weights in their 38 tensors, on 1 and 2 threads: µs per step. The first
//! shard's gradient buffer accumulates the second's every step, as in training; the values
//! do not change the time.
//!
//! `cargo run --release --example bench_adam [-- --threads 1,2,4]`

use plastinka::forecast::adam::FlatAdam;

/// The default model's parameter tensors (5,000 × 36 generated shop), in order.
const SIZES: [usize; 38] = [
    52, 4, 4, 1, 13, 1, 11200, 64, 4096, 64, 11200, 64, 4096, 64, 4096, 64, 4096, 64, 4096, 64,
    4096, 64, 4096, 64, 4096, 64, 81920, 1280, 81920, 1280, 20560, 16, 80, 5, 6425, 5, 50, 5,
];

fn main() -> anyhow::Result<()> {
    let threads: Vec<usize> = std::env::args()
        .skip_while(|a| a != "--threads")
        .nth(1)
        .unwrap_or_else(|| "1,2".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let mut segments = Vec::new();
    let mut at = 0;
    for size in SIZES {
        segments.push(at..at + size);
        at += size;
    }
    for n in threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build()?;
        let micros = pool.install(|| {
            let mut params = vec![0.1f32; at];
            let mut grads = vec![vec![0.01f32; at]; 2];
            let mut adam = FlatAdam::new(1e-6, 0.5);
            let steps = 2000;
            let started = std::time::Instant::now();
            for _ in 0..steps {
                adam.step(1e-3, &mut params, &mut grads, &segments);
            }
            started.elapsed().as_secs_f64() / steps as f64 * 1e6
        });
        println!("threads {n}: {micros:.1} µs a step ({at} weights, two shards' gradients)");
    }
    Ok(())
}
