//! Training throughput of the engine alone (no JS), in tokens/s.
//! `cargo run --release -p lstmgen-core --example throughput -- VOCAB EMB HIDDEN LAYERS BATCH SEQ STEPS [f32|bf16]`
//! (STEPS 0: generation only; `GEN_TOKENS` sets the tokens per sample, 0 skips generation)

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use candle_core::Device;
use lstmgen_core::gemm::{self, Precision};
use lstmgen_core::{AdamConfig, Model, ModelConfig, SampleConfig};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let precision = Precision::parse(args.get(7).map_or("f32", |s| s.as_str())).unwrap();
    let a: Vec<usize> = args
        .iter()
        .take(7)
        .map(|s| s.parse().expect("integer arguments"))
        .collect();
    let [vocab, emb, hidden, layers, batch, seq, steps] = a[..] else {
        panic!("usage: VOCAB EMB HIDDEN LAYERS BATCH SEQ STEPS [f32|bf16]");
    };
    let cfg = ModelConfig {
        vocab_size: vocab,
        embedding_dim: emb,
        hidden_size: hidden,
        num_layers: layers,
        dropout: 0.0,
        proj_size: 0,
    };
    let mut model = Model::new(cfg, 0, Device::Cpu).unwrap();
    model.set_precision(precision).unwrap();
    eprintln!("matrix products: {} ({precision:?})", gemm::backend());
    let n = batch * seq;
    let ids: Vec<u32> = (0..n).map(|i| ((i * 7919) % vocab) as u32).collect();
    let opt = AdamConfig::default();
    if steps > 0 {
        // STEPS 0: generation only
        model
            .train_step(&ids, &ids, batch, seq, &opt, 0, None)
            .unwrap(); // warm-up
        let t0 = Instant::now();
        for s in 0..steps {
            model
                .train_step(&ids, &ids, batch, seq, &opt, s as u64, None)
                .unwrap();
        }
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{:.0} tokens/s ({:.3} s/step)",
            (n * steps) as f64 / secs,
            secs / steps as f64
        );
    }
    // Generation: 64 samples of GEN_TOKENS tokens (default 100) after a 1-token prompt.
    let gen: usize = std::env::var("GEN_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if gen > 0 {
        let cfg = SampleConfig {
            num_samples: 64,
            max_tokens: gen,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 1,
            stop_sequences: vec![],
            banned_ids: vec![],
            reset_at: None,
            controls: Default::default(),
        };
        lstmgen_core::sample::generate(
            &model,
            &ids[..1],
            &SampleConfig {
                max_tokens: 2,
                ..cfg.clone()
            },
        )
        .unwrap();
        let (t0, cpu0) = (Instant::now(), cpu_seconds());
        lstmgen_core::sample::generate(&model, &ids[..1], &cfg).unwrap();
        let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
        println!(
            "generation: {:.0} tokens/s (64 samples x {gen}), {:.0} tokens per CPU second",
            (64 * gen) as f64 / secs,
            (64 * gen) as f64 / cpu
        );
    }
}

/// CPU time (user + system) of this process so far, in seconds (Linux: /proc/self/stat, at the
/// kernel's clock-tick resolution; NaN elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // the fields after the command name in parentheses: utime and stime are the 12th and 13th
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    if f.len() < 2 {
        return f64::NAN;
    }
    (f[0] + f[1]) / 100.0 // USER_HZ is 100 on Linux
}
