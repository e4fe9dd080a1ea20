//! Engine behaviour beyond the gradients: long unrolls, determinism, state carrying, bad input.

use candle_core::Device;
use lstmgen_core::{AdamConfig, Model, ModelConfig, SampleConfig};

fn cfg(dropout: f32) -> ModelConfig {
    ModelConfig {
        vocab_size: 13,
        embedding_dim: 6,
        hidden_size: 8,
        num_layers: 2,
        dropout,
        proj_size: 0,
    }
}

fn ids(n: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7 + i / 3) % 13) as u32).collect()
}

#[test]
fn seq_len_512_trains_without_overflow() {
    let mut m = Model::new(cfg(0.0), 1, Device::Cpu).unwrap();
    let x = ids(2 * 512);
    let s = m
        .train_step(&x, &x, 2, 512, &AdamConfig::default(), 0, None)
        .unwrap();
    assert!(s.loss.is_finite() && s.loss > 0.0);
    assert_eq!(s.count, 1024);
}

#[test]
fn same_seed_same_losses_with_dropout() {
    let run = || {
        let mut m = Model::new(cfg(0.3), 7, Device::Cpu).unwrap();
        let x = ids(4 * 10);
        let opt = AdamConfig {
            lr: 0.03,
            ..AdamConfig::default()
        };
        (0..8)
            .map(|k| {
                m.reset_train_state();
                m.train_step(&x, &x, 4, 10, &opt, 100 + k, None)
                    .unwrap()
                    .loss
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert!(
        a[7] < a[0] - 0.05,
        "loss should fall on a repeated batch: {a:?}"
    );
}

#[test]
fn eval_state_carries_between_batches() {
    let mut m = Model::new(cfg(0.0), 3, Device::Cpu).unwrap();
    let x = ids(2 * 8);
    let first = m.eval_step(&x, &x, 2, 8, None).unwrap().loss_sum;
    let carried = m.eval_step(&x, &x, 2, 8, None).unwrap().loss_sum;
    m.reset_eval_state();
    let fresh = m.eval_step(&x, &x, 2, 8, None).unwrap().loss_sum;
    assert_eq!(first, fresh);
    assert_ne!(
        first, carried,
        "the second batch must start from the carried state"
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let mut m = Model::new(cfg(0.0), 3, Device::Cpu).unwrap();
    let opt = AdamConfig::default();
    let e = m
        .train_step(&[1, 2, 3], &[1, 2, 3], 2, 2, &opt, 0, None)
        .unwrap_err();
    assert_eq!(e.code(), "E_DATA", "{e}");
    assert!(
        !e.to_string().starts_with("E_"),
        "no code prefix in the message: {e}"
    );
    let e = m
        .train_step(&[1, 99], &[1, 2], 1, 2, &opt, 0, None)
        .unwrap_err();
    assert!(e.to_string().contains("not a token id"), "{e}");
    let e = m
        .train_step(
            &[1, 2],
            &[1, 2],
            1,
            2,
            &AdamConfig {
                lr: f64::NAN,
                ..opt
            },
            0,
            None,
        )
        .unwrap_err();
    assert!(e.to_string().contains("lr"), "{e}");
    let e = Model::new(
        ModelConfig {
            hidden_size: 0,
            ..cfg(0.0)
        },
        0,
        Device::Cpu,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("hiddenSize"), "{e}");
    let bad = SampleConfig {
        num_samples: 1,
        max_tokens: 3,
        temperature: -1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 0,
        stop_sequences: vec![],
        banned_ids: vec![],
        reset_at: None,
        controls: Default::default(),
    };
    let e = lstmgen_core::sample::generate(&m, &[1], &bad).unwrap_err();
    assert!(e.to_string().contains("temperature"), "{e}");
}

#[test]
fn sampling_is_seeded_and_stops() {
    let m = Model::new(cfg(0.0), 5, Device::Cpu).unwrap();
    let sc = SampleConfig {
        num_samples: 4,
        max_tokens: 20,
        temperature: 1.0,
        top_k: 5,
        top_p: 0.9,
        seed: 11,
        stop_sequences: vec![],
        banned_ids: vec![],
        reset_at: None,
        controls: Default::default(),
    };
    let a = lstmgen_core::sample::generate(&m, &[1, 2, 3], &sc).unwrap();
    assert_eq!(
        a,
        lstmgen_core::sample::generate(&m, &[1, 2, 3], &sc).unwrap()
    );
    assert_eq!(a.len(), 4);
    assert!(a.iter().all(|s| s.len() == 20));
    let stop = a[0][2];
    let b = lstmgen_core::sample::generate(
        &m,
        &[1, 2, 3],
        &SampleConfig {
            stop_sequences: vec![vec![stop]],
            banned_ids: vec![],
            reset_at: None,
            controls: Default::default(),
            ..sc.clone()
        },
    )
    .unwrap();
    assert_eq!(
        b[0],
        a[0][..=a[0].iter().position(|&t| t == stop).unwrap()].to_vec()
    );
    let greedy = SampleConfig {
        temperature: 0.0,
        ..sc
    };
    let g = lstmgen_core::sample::generate(&m, &[1, 2, 3], &greedy).unwrap();
    assert!(g.iter().all(|s| s == &g[0]), "greedy samples must agree");
}

#[test]
fn top_k_one_equals_greedy() {
    let m = Model::new(cfg(0.0), 5, Device::Cpu).unwrap();
    let base = SampleConfig {
        num_samples: 2,
        max_tokens: 15,
        temperature: 1.0,
        top_k: 1,
        top_p: 1.0,
        seed: 3,
        stop_sequences: vec![],
        banned_ids: vec![],
        reset_at: None,
        controls: Default::default(),
    };
    let k1 = lstmgen_core::sample::generate(&m, &[4], &base).unwrap();
    let g = lstmgen_core::sample::generate(
        &m,
        &[4],
        &SampleConfig {
            temperature: 0.0,
            top_k: 0,
            ..base
        },
    )
    .unwrap();
    assert_eq!(k1, g);
}

#[test]
fn checkpoint_resumes_exactly() {
    use lstmgen_core::io;
    let dev = Device::Cpu;
    let mut a = Model::new(cfg(0.2), 9, dev.clone()).unwrap();
    let opt = AdamConfig {
        lr: 0.01,
        ..AdamConfig::default()
    };
    let batches: Vec<Vec<u32>> = (0..6).map(|k| ids(3 * 7 + k).split_off(k)).collect();
    for (k, x) in batches[..3].iter().enumerate() {
        a.train_step(x, x, 3, 7, &opt, k as u64, None).unwrap();
    }
    let bytes = io::to_safetensors(&a, &Default::default(), true).unwrap();
    let mut b = io::from_safetensors(&bytes, &dev).unwrap().model;
    assert_eq!(b.step(), 3);
    for (k, x) in batches[3..].iter().enumerate() {
        let la = a
            .train_step(x, x, 3, 7, &opt, 3 + k as u64, None)
            .unwrap()
            .loss;
        let lb = b
            .train_step(x, x, 3, 7, &opt, 3 + k as u64, None)
            .unwrap()
            .loss;
        assert_eq!(la, lb, "step {}", 4 + k);
    }
    // A weights-only file keeps the step count but no optimizer state (io's unit tests check
    // that its moments start fresh).
    let plain = io::to_safetensors(&a, &Default::default(), false).unwrap();
    assert_eq!(
        io::from_safetensors(&plain, &dev).unwrap().model.step(),
        a.step()
    );
    assert!(plain.len() < bytes.len());
}

#[test]
fn streaming_and_piecewise_priming_match_one_call() {
    use lstmgen_core::sample::{generate, Sampler};
    let m = Model::new(cfg(0.0), 5, Device::Cpu).unwrap();
    let sc = SampleConfig {
        num_samples: 3,
        max_tokens: 12,
        temperature: 0.9,
        top_k: 0,
        top_p: 1.0,
        seed: 21,
        stop_sequences: vec![],
        banned_ids: vec![],
        reset_at: None,
        controls: Default::default(),
    };
    let prompt = [1, 2, 3, 4, 5, 6];
    let whole = generate(&m, &prompt, &sc).unwrap();
    // Streamed in chunks of 5 tokens.
    let mut s = Sampler::new(&m, &prompt, &sc).unwrap();
    let mut streamed = vec![Vec::new(); 3];
    while !s.finished() {
        for (acc, chunk) in streamed.iter_mut().zip(s.next(&m, 5).unwrap()) {
            acc.extend(chunk);
        }
    }
    assert_eq!(streamed, whole);
    // Primed piece by piece: greedy continuations agree with priming at once.
    let greedy = SampleConfig {
        temperature: 0.0,
        ..sc.clone()
    };
    let mut p = Sampler::new(&m, &prompt[..2], &greedy).unwrap();
    p.feed(&m, &prompt[2..4]).unwrap();
    p.feed(&m, &prompt[4..]).unwrap();
    assert_eq!(
        p.next(&m, 12).unwrap(),
        generate(&m, &prompt, &greedy).unwrap()
    );
    // maxTokens 0 yields nothing.
    let none = generate(
        &m,
        &prompt,
        &SampleConfig {
            max_tokens: 0,
            ..sc
        },
    )
    .unwrap();
    assert!(none.iter().all(|s| s.is_empty()));
}

#[test]
fn state_dict_import_infers_the_shape() {
    use lstmgen_core::io;
    let dev = Device::Cpu;
    let m = Model::new(cfg(0.0), 4, dev.clone()).unwrap();
    let bytes = io::to_safetensors(&m, &Default::default(), false).unwrap();
    let imported = io::from_state_dict(&bytes, &dev).unwrap();
    assert_eq!(*imported.config(), cfg(0.0));
    let x = ids(6);
    assert_eq!(
        m.logits(&x, 2, 3, None).unwrap().0,
        imported.logits(&x, 2, 3, None).unwrap().0
    );
    assert!(io::from_state_dict(b"nonsense", &dev).is_err());
}

#[test]
fn a_prompt_fed_in_chunks_reaches_the_state_of_one_pass() {
    use lstmgen_core::sample::Sampler;
    let m = Model::new(cfg(0.0), 3, Device::Cpu).unwrap();
    let sc = SampleConfig {
        num_samples: 1,
        max_tokens: 20,
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        seed: 1,
        stop_sequences: vec![],
        banned_ids: vec![],
        reset_at: None,
        controls: Default::default(),
    };
    let prompt = ids(103);
    let (_, whole) = m.logits(&prompt, 1, prompt.len(), None).unwrap();
    for rows in [1, 7, 50, 4096] {
        let mut s = Sampler::with_prime_rows(&m, &prompt, &sc, rows).unwrap();
        let state = s.state().unwrap();
        for (a, b) in state
            .h
            .iter()
            .chain(&state.c)
            .zip(whole.h.iter().chain(&whole.c))
        {
            let d = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
            let d = d.max(0).unwrap().to_scalar::<f32>().unwrap();
            assert!(d <= 1e-6, "chunks of {rows}: state differs by {d}");
        }
        let greedy = s.next(&m, 20).unwrap();
        assert_eq!(
            greedy,
            lstmgen_core::sample::generate(&m, &prompt, &sc).unwrap()
        );
    }
}

#[test]
fn each_sample_has_its_own_stream() {
    use lstmgen_core::sample::generate;
    let m = Model::new(cfg(0.0), 5, Device::Cpu).unwrap();
    let sc = |n, top_k| SampleConfig {
        num_samples: n,
        max_tokens: 25,
        temperature: 1.0,
        top_k,
        top_p: 1.0,
        seed: 21,
        stop_sequences: vec![],
        banned_ids: vec![],
        reset_at: None,
        controls: Default::default(),
    };
    for top_k in [0, 4] {
        let one = generate(&m, &[1, 2, 3], &sc(1, top_k)).unwrap();
        let three = generate(&m, &[1, 2, 3], &sc(3, top_k)).unwrap();
        let five = generate(&m, &[1, 2, 3], &sc(5, top_k)).unwrap();
        assert_eq!(three[0], one[0]);
        assert_eq!(&five[..3], &three[..]);
        assert_ne!(three[0], three[1]);
    }
}

#[test]
fn banned_ids_are_never_sampled() {
    use lstmgen_core::sample::generate;
    let m = Model::new(cfg(0.0), 5, Device::Cpu).unwrap();
    let v = cfg(0.0).vocab_size as u32;
    let banned: Vec<u32> = (0..v).filter(|id| id % 3 != 1).collect();
    for (temperature, top_k, top_p) in [(1.5, 0, 1.0), (0.0, 0, 1.0), (2.0, 5, 1.0), (3.0, 0, 0.9)]
    {
        let sc = SampleConfig {
            num_samples: 4,
            max_tokens: 200,
            temperature,
            top_k,
            top_p,
            seed: 3,
            stop_sequences: vec![],
            banned_ids: banned.clone(),
            reset_at: None,
            controls: Default::default(),
        };
        for s in generate(&m, &[1, 2], &sc).unwrap() {
            assert!(s.iter().all(|id| id % 3 == 1), "T={temperature}: {s:?}");
        }
    }
    let sc = |banned_ids| SampleConfig {
        num_samples: 1,
        max_tokens: 3,
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 3,
        stop_sequences: vec![],
        banned_ids,
        reset_at: None,
        controls: Default::default(),
    };
    let all = generate(&m, &[1], &sc((0..v).collect())).unwrap_err();
    assert_eq!(all.code(), "E_DATA", "{all}");
    let bad = generate(&m, &[1], &sc(vec![v])).unwrap_err();
    assert!(bad.to_string().contains("bannedIds"), "{bad}");
}
