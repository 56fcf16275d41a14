//! The optimizer step of the CPU training step (`FlatAdam`) on the default model's
//! 249,429 weights in their 38 tensors, on 1 and 2 threads: µs per step, with one shard's
//! gradient per thread written afresh before each step by its worker, as in training.
//! `--shared-reads`: each worker also reads every weight before the step, as the shards
//! do, so the update must take back cache lines the other core holds.
//!
//! `cargo run --release --example bench_adam [-- --threads 1,2,4] [--shared-reads]`

use plastinka::forecast::adam::FlatAdam;
use plastinka::forecast::workers::on_each;

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
    let shared_reads = std::env::args().any(|a| a == "--shared-reads");
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
            // One shard per thread, as training splits a batch.
            let mut grads = vec![vec![0.01f32; at]; n];
            let mut adam = FlatAdam::new(1e-6, 0.5);
            let steps = 2000;
            let mut timed = 0.0;
            for step in 0..steps {
                // As in training, worker k writes shard k's gradient just before the
                // step, so the optimizer finds it in that core's cache.
                let work: Vec<&mut Vec<f32>> = grads.iter_mut().collect();
                let weights = &params;
                let read = on_each(work, |grad| {
                    grad.fill(0.01 + step as f32 * 1e-9);
                    // The shards read every weight (each core then holds a copy).
                    if shared_reads {
                        weights.iter().sum::<f32>()
                    } else {
                        0.0
                    }
                });
                std::hint::black_box(read);
                let started = std::time::Instant::now();
                adam.step(1e-3, &mut params, &mut grads, &segments)?;
                timed += started.elapsed().as_secs_f64();
            }
            Ok::<f64, anyhow::Error>(timed / steps as f64 * 1e6)
        })?;
        println!("threads {n}: {micros:.1} µs a step ({at} weights, gradients of {n} shard(s))");
    }
    Ok(())
}
