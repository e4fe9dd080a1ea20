//! The batch of independent rows (`lstmgen_core::sessions`) and the generation controls: a row's
//! tokens do not depend on the rows stepped with it, a row samples what `generate` samples for
//! the same seed, feeding in pieces equals feeding at once, forks continue alike, and the
//! controls do what they say.

use candle_core::Device;
use lstmgen_core::controls::Controls;
use lstmgen_core::sample::generate;
use lstmgen_core::sessions::Sessions;
use lstmgen_core::{Model, ModelConfig, SampleConfig};

fn model() -> Model {
    let cfg = ModelConfig {
        vocab_size: 40,
        embedding_dim: 8,
        hidden_size: 16,
        num_layers: 2,
        dropout: 0.0,
        proj_size: 0,
    };
    Model::new(cfg, 3, Device::Cpu).unwrap()
}

fn sc(seed: u64, max_tokens: usize) -> SampleConfig {
    SampleConfig {
        num_samples: 1,
        max_tokens,
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed,
        stop_sequences: vec![],
        banned_ids: vec![],
        controls: Controls::default(),
        reset_at: None,
    }
}

/// Steps `ids` together until all have ended; the tokens of each.
fn run(s: &mut Sessions, m: &Model, ids: &[u32], k: usize) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); ids.len()];
    loop {
        let fresh = s.step(m, ids, k).unwrap();
        if fresh.iter().all(|f| f.is_empty()) {
            return out;
        }
        for (o, f) in out.iter_mut().zip(fresh) {
            o.extend(f);
        }
    }
}

#[test]
fn a_row_samples_what_generate_samples_for_its_seed_and_stream() {
    let m = model();
    let with_controls = SampleConfig {
        top_k: 12,
        top_p: 0.9,
        banned_ids: vec![5],
        controls: Controls {
            repetition_penalty: 1.5,
            frequency_penalty: 0.3,
            no_repeat_ngram: 3,
            window: 20,
            min_tokens: 4,
            end_ids: vec![7],
        },
        ..sc(11, 30)
    };
    for cfg in [sc(9, 30), with_controls] {
        let want = generate(
            &m,
            &[1, 2, 3],
            &SampleConfig {
                num_samples: 3,
                ..cfg.clone()
            },
        )
        .unwrap();
        let mut s = Sessions::new();
        let rows: Vec<u32> = (0..3)
            .map(|i| s.add(&m, &[1, 2, 3], &cfg, i).unwrap())
            .collect();
        assert_eq!(run(&mut s, &m, &rows, 4), want);
    }
}

#[test]
fn a_rows_tokens_do_not_depend_on_the_other_rows() {
    let m = model();
    let mut alone = Sessions::new();
    let a = alone.add(&m, &[4, 5], &sc(21, 25), 0).unwrap();
    let want = run(&mut alone, &m, &[a], 1).remove(0);
    let mut crowd = Sessions::new();
    let x = crowd
        .add(
            &m,
            &[9; 50],
            &SampleConfig {
                temperature: 0.0,
                ..sc(1, 40)
            },
            0,
        )
        .unwrap();
    let a = crowd.add(&m, &[4, 5], &sc(21, 25), 0).unwrap();
    let y = crowd
        .add(
            &m,
            &[3],
            &SampleConfig {
                top_k: 3,
                ..sc(21, 7)
            },
            4,
        )
        .unwrap();
    // x and y join and leave at other times than a
    let first = crowd.step(&m, &[x, a], 3).unwrap();
    let mut got = first[1].clone();
    for k in 0..30 {
        let ids: Vec<u32> = if k % 2 == 0 { vec![y, a, x] } else { vec![a] };
        let fresh = crowd.step(&m, &ids, 1).unwrap();
        got.extend(fresh[ids.iter().position(|&i| i == a).unwrap()].clone());
    }
    assert_eq!(got, want);
}

#[test]
fn feeding_in_pieces_equals_feeding_at_once() {
    let m = model();
    let text: Vec<u32> = (0..300).map(|i| (i * 7 % 40) as u32).collect();
    let mut s = Sessions::new();
    let once = s.add(&m, &text, &sc(0, 10), 0).unwrap();
    let pieces = s.add(&m, &[], &sc(0, 10), 0).unwrap();
    for part in text.chunks(37) {
        s.feed(&m, pieces, part).unwrap();
    }
    let (a, b) = (s.top(once, 40).unwrap(), s.top(pieces, 40).unwrap());
    for (id, p) in a.ids.iter().zip(&a.probs) {
        let q = b.probs[b.ids.iter().position(|i| i == id).unwrap()];
        assert!((p - q).abs() < 1e-6, "token {id}: {p} vs {q}");
    }
}

#[test]
fn top_probabilities_sum_to_one_and_are_ordered() {
    let m = model();
    let mut s = Sessions::new();
    let r = s.add(&m, &[1, 2], &sc(0, 10), 0).unwrap();
    let all = s.top(r, 1000).unwrap();
    assert_eq!(all.ids.len(), 40);
    let sum: f64 = all.probs.iter().sum();
    assert!((sum - 1.0).abs() < 1e-9, "{sum}");
    assert!(all.probs.windows(2).all(|w| w[0] >= w[1]));
    let three = s.top(r, 3).unwrap();
    assert_eq!(three.ids, all.ids[..3].to_vec());
    let empty = s.add(&m, &[], &sc(0, 10), 0).unwrap();
    assert!(s.top(empty, 3).unwrap_err().to_string().contains("feed"));
}

#[test]
fn a_fork_continues_as_its_origin_and_reseeds_on_request() {
    let m = model();
    let mut s = Sessions::new();
    let a = s.add(&m, &[1, 2, 3], &sc(5, 40), 0).unwrap();
    s.step(&m, &[a], 5).unwrap();
    let b = s.fork(a, None).unwrap();
    let c = s.fork(a, Some(9)).unwrap();
    let out = run(&mut s, &m, &[a, b, c], 2);
    assert_eq!(out[0], out[1]);
    assert_ne!(out[0], out[2]);
    assert!(s.remove(b));
    assert!(!s.remove(b));
    assert!(s
        .step(&m, &[b], 1)
        .unwrap_err()
        .to_string()
        .contains("does not exist"));
    assert!(s
        .step(&m, &[a, a], 1)
        .unwrap_err()
        .to_string()
        .contains("twice"));
    // a failed step leaves the rows in place
    assert_eq!(s.len(), 2);
}

#[test]
fn set_options_restarts_the_count_and_validates() {
    let m = model();
    let mut s = Sessions::new();
    let a = s.add(&m, &[1], &sc(5, 3), 0).unwrap();
    assert_eq!(run(&mut s, &m, &[a], 10)[0].len(), 3);
    assert!(s.done(a).unwrap());
    s.set_options(&m, a, &sc(5, 4), None).unwrap();
    assert_eq!(run(&mut s, &m, &[a], 10)[0].len(), 4);
    let bad = SampleConfig {
        top_p: 0.0,
        ..sc(5, 4)
    };
    assert!(s
        .set_options(&m, a, &bad, None)
        .unwrap_err()
        .to_string()
        .contains("topP"));
    let bad = SampleConfig {
        banned_ids: vec![40],
        ..sc(5, 4)
    };
    assert!(s
        .add(&m, &[1], &bad, 0)
        .unwrap_err()
        .to_string()
        .contains("bannedIds"));
    let bad = SampleConfig {
        controls: Controls {
            repetition_penalty: 0.0,
            ..Controls::default()
        },
        ..sc(5, 4)
    };
    assert!(s
        .add(&m, &[1], &bad, 0)
        .unwrap_err()
        .to_string()
        .contains("repetitionPenalty"));
}

#[test]
fn no_repeat_unigram_gives_distinct_tokens_and_min_tokens_delays_the_end() {
    let m = model();
    let greedy = SampleConfig {
        temperature: 0.0,
        ..sc(0, 20)
    };
    let plain = generate(&m, &[1], &greedy).unwrap().remove(0);
    let distinct = generate(
        &m,
        &[1],
        &SampleConfig {
            controls: Controls {
                no_repeat_ngram: 1,
                window: 64,
                ..Controls::default()
            },
            ..greedy.clone()
        },
    )
    .unwrap()
    .remove(0);
    let mut seen = distinct.clone();
    seen.push(1);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 21, "{distinct:?}");
    // greedy's first token, as the end token, cannot come before the third position
    let end = plain[0];
    let delayed = generate(
        &m,
        &[1],
        &SampleConfig {
            controls: Controls {
                min_tokens: 3,
                end_ids: vec![end],
                ..Controls::default()
            },
            ..greedy.clone()
        },
    )
    .unwrap()
    .remove(0);
    assert!(!delayed[..3].contains(&end), "{delayed:?}");
    // a strong CTRL penalty gives no more immediate repeats than none
    let penalized = generate(
        &m,
        &[1],
        &SampleConfig {
            controls: Controls {
                repetition_penalty: 10.0,
                ..Controls::default()
            },
            ..greedy
        },
    )
    .unwrap()
    .remove(0);
    let repeats = |t: &[u32]| t.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(
        repeats(&penalized) <= repeats(&plain),
        "{penalized:?} vs {plain:?}"
    );
}

/// A row's tokens are the same alone and in a batch of 300 rows, whose products are large enough to
/// take another matrix-product path (OpenBLAS, threads) than a single row's.
#[test]
fn a_rows_tokens_are_the_same_in_a_large_batch() {
    let cfg = ModelConfig {
        vocab_size: 60,
        embedding_dim: 32,
        hidden_size: 64,
        num_layers: 2,
        dropout: 0.0,
        proj_size: 0,
    };
    let m = Model::new(cfg, 8, Device::Cpu).unwrap();
    let mut alone = Sessions::new();
    let a = alone.add(&m, &[4, 5, 6], &sc(3, 60), 0).unwrap();
    let want = run(&mut alone, &m, &[a], 4).remove(0);
    let mut crowd = Sessions::new();
    let mut ids: Vec<u32> = (0..299)
        .map(|i| {
            crowd
                .add(&m, &[(i % 50) as u32 + 1], &sc(i, 60), 1)
                .unwrap()
        })
        .collect();
    let a = crowd.add(&m, &[4, 5, 6], &sc(3, 60), 0).unwrap();
    ids.push(a);
    let got = run(&mut crowd, &m, &ids, 4).pop().unwrap();
    assert_eq!(got, want);
}

/// Rows added together (prompts of equal length primed in one batch) sample what rows added one by
/// one sample; an item with bad options gets its own error and the others are added.
#[test]
fn rows_added_together_equal_rows_added_alone() {
    let m = model();
    let items: Vec<(Vec<u32>, SampleConfig, u64)> = vec![
        (vec![1, 2, 3], sc(1, 20), 0),
        (vec![7, 8, 9], sc(2, 20), 1),
        (vec![4], sc(3, 20), 0),
        (
            vec![5, 6],
            SampleConfig {
                top_p: 2.0,
                ..sc(4, 20)
            },
            0,
        ),
        (vec![30, 31, 32], sc(5, 20), 2),
        (vec![], sc(6, 20), 0),
    ];
    let mut one = Sessions::new();
    let alone: Vec<Vec<u32>> = items
        .iter()
        .filter(|(p, c, _)| c.top_p <= 1.0 && !p.is_empty())
        .map(|(p, c, st)| {
            let r = one.add(&m, p, c, *st).unwrap();
            run(&mut one, &m, &[r], 3).remove(0)
        })
        .collect();
    let mut many = Sessions::new();
    let added = many.add_many(&m, &items).unwrap();
    assert!(added[3].as_ref().unwrap_err().to_string().contains("topP"));
    let ids: Vec<u32> = [0, 1, 2, 4]
        .iter()
        .map(|&i| *added[i].as_ref().unwrap())
        .collect();
    assert_eq!(run(&mut many, &m, &ids, 3), alone);
    // the empty prompt's row waits to be fed
    let empty = *added[5].as_ref().unwrap();
    assert!(many.top(empty, 1).is_err());
}

/// A model (vocabulary 10, one layer of 8) with finite weights whose next-token logits are all 0
/// from the zero state until token `x` is fed, and all -inf from then on: `x`'s embedding drives
/// every gate open and the cell to about 1, and the decoder weights of -3e38 overflow on that
/// hidden state (every other embedding is 0, so the state stays 0 without `x`).
fn overflowing_after(x: u32) -> Model {
    let (v, e, h) = (10, 4, 8);
    let cfg = ModelConfig {
        vocab_size: v,
        embedding_dim: e,
        hidden_size: h,
        num_layers: 1,
        dropout: 0.0,
        proj_size: 0,
    };
    let mut emb = vec![0f32; v * e];
    emb[x as usize * e..(x as usize + 1) * e].fill(10.0);
    let t = |data: Vec<f32>, shape: &[usize]| {
        candle_core::Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    };
    let params = vec![
        t(emb, &[v, e]),
        t(vec![1.0; 4 * h * e], &[4 * h, e]),
        t(vec![0.0; 4 * h * h], &[4 * h, h]),
        t(vec![0.0; 4 * h], &[4 * h]),
        t(vec![0.0; 4 * h], &[4 * h]),
        t(vec![-3e38; v * h], &[v, h]),
        t(vec![0.0; v], &[v]),
    ];
    Model::from_params(cfg, params, Device::Cpu).unwrap()
}

#[test]
fn logits_that_overflow_mid_generation_are_a_numeric_error() {
    let m = overflowing_after(0);
    // the prompt's logits are finite: the error comes once token 0 is sampled
    for cfg in [
        sc(5, 300),
        SampleConfig {
            top_k: 4,
            ..sc(6, 300)
        },
    ] {
        let e = generate(&m, &[1, 2], &cfg).unwrap_err();
        assert_eq!(e.code(), "E_NUMERIC", "{cfg:?}");
        assert!(e.to_string().contains("not finite"), "{e}");
    }
    // greedy: every logit of the prompt's row is 0, the argmax takes the first, id 0, then fails
    let greedy = SampleConfig {
        temperature: 0.0,
        ..sc(1, 5)
    };
    assert_eq!(generate(&m, &[1], &greedy).unwrap_err().code(), "E_NUMERIC");
    // a row that never samples token 0 generates to the end
    let banned = SampleConfig {
        banned_ids: vec![0],
        ..sc(5, 300)
    };
    assert_eq!(generate(&m, &[1, 2], &banned).unwrap()[0].len(), 300);
}

#[test]
fn a_diverged_row_fails_alone_and_the_rows_stepped_with_it_go_on() {
    let m = overflowing_after(0);
    let safe = SampleConfig {
        banned_ids: vec![0],
        ..sc(3, 200)
    };
    let mut alone = Sessions::new();
    let a = alone.add(&m, &[1], &safe, 0).unwrap();
    let want = run(&mut alone, &m, &[a], 200).remove(0);
    assert_eq!(want.len(), 200);

    let mut s = Sessions::new();
    let a = s.add(&m, &[1], &safe, 0).unwrap();
    let b = s.add(&m, &[2], &sc(4, 200), 0).unwrap();
    let c = s.add(&m, &[0], &sc(4, 200), 0).unwrap();
    let out = s.step_each(&m, &[b, a, c], 200).unwrap();
    // b samples token 0 at some point (1 in 10 per draw), c's prompt ends with it
    for (i, row) in [(0, "b"), (2, "c")] {
        let e = out[i].as_ref().unwrap_err();
        assert_eq!(e.code(), "E_NUMERIC", "row {row}");
    }
    assert_eq!(out[1].as_ref().unwrap(), &want);
    // stepping a failed row again fails again; `step` gives the first row's error
    assert_eq!(s.step(&m, &[c], 1).unwrap_err().code(), "E_NUMERIC");
    assert!(s.step_each(&m, &[c], 1).unwrap()[0].is_err());
}
