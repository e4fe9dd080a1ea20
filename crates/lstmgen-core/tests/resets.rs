//! The state reset at record boundaries is exact: a record's loss does not depend on what
//! precedes it in its row (in the same batch or carried from the previous one), and equals the
//! loss of the record evaluated alone from a zero state. f64, so equal means equal to rounding.

use candle_core::{DType, Device, Tensor};
use lstmgen_core::params::init_params;
use lstmgen_core::{Model, ModelConfig};

const B: u32 = 1; // the boundary id

fn model() -> Model {
    let cfg = ModelConfig {
        vocab_size: 9,
        embedding_dim: 4,
        hidden_size: 6,
        num_layers: 2,
        dropout: 0.0,
        proj_size: 0,
    };
    let params: Vec<Tensor> = init_params(&cfg, 5, &Device::Cpu)
        .unwrap()
        .iter()
        .map(|p| p.to_dtype(DType::F64).unwrap())
        .collect();
    Model::from_params(cfg, params, Device::Cpu).unwrap()
}

/// Summed loss (nats) of the token sequence `s` read as one row from a zero state: inputs
/// `s[..n-1]`, targets `s[1..]`.
fn row_loss(m: &mut Model, s: &[u32], boundary: Option<u32>) -> f64 {
    m.reset_eval_state();
    let n = s.len() - 1;
    m.eval_step(&s[..n], &s[1..], 1, n, boundary)
        .unwrap()
        .loss_sum
}

/// The record [B, body..., B]: its positions predict body and the closing boundary.
fn record(body: &[u32]) -> Vec<u32> {
    [&[B], body, &[B]].concat()
}

#[test]
fn a_records_loss_is_the_same_whatever_precedes_it_and_equals_it_alone() {
    let mut m = model();
    let body = [3, 7, 2, 2, 8, 5];
    let rec = record(&body);
    let alone = row_loss(&mut m, &rec, Some(B));
    let prefixes: [&[u32]; 4] = [
        &[4, 4, 6],
        &[8, 2, 3, 5, 7, 6, 2, 4, 4, 3, 8],
        &[B, 6, 6, B, 2],
        &[5],
    ];
    for prefix in prefixes {
        // The row prefix ++ rec: the positions of the prefix (up to predicting the record's
        // opening boundary) are those of the prefix row alone, so the difference is the record's.
        let whole: Vec<u32> = [prefix, &rec[..]].concat();
        let before: Vec<u32> = [prefix, &[B]].concat();
        let in_row = row_loss(&mut m, &whole, Some(B)) - row_loss(&mut m, &before, Some(B));
        assert!(
            (in_row - alone).abs() <= 1e-12 * alone.abs(),
            "after {prefix:?}: {in_row} vs alone {alone}"
        );
        // Without the reset the state runs on and the record's loss depends on its prefix.
        let carried = row_loss(&mut m, &whole, None) - row_loss(&mut m, &before, None);
        assert!((carried - alone).abs() > 1e-6, "{carried} vs {alone}");
    }
}

#[test]
fn the_state_carried_from_the_previous_batch_resets_at_a_boundary_on_the_first_step() {
    let mut m = model();
    let rec = record(&[6, 3, 3, 8]);
    let alone = row_loss(&mut m, &rec, Some(B));
    let n = rec.len() - 1;
    m.reset_eval_state();
    let prefix = [4u32, 7, 2, 5, 5];
    // batch 1: the prefix (its last target is the boundary); batch 2: the record, state carried
    m.eval_step(&prefix, &[7, 2, 5, 5, B], 1, 5, Some(B))
        .unwrap();
    let second = m
        .eval_step(&rec[..n], &rec[1..], 1, n, Some(B))
        .unwrap()
        .loss_sum;
    assert!(
        (second - alone).abs() <= 1e-12 * alone,
        "{second} vs {alone}"
    );
}

#[test]
fn rows_of_a_batch_reset_independently() {
    // 17 rows (two row groups on two threads), each a record at another offset among other tokens
    let mut m = model();
    let (rows, len) = (17, 12);
    let seqs: Vec<Vec<u32>> = (0..rows)
        .map(|r| {
            let mut s: Vec<u32> = (0..len + 1)
                .map(|i| ((r * 3 + i * 5) % 7 + 2) as u32)
                .collect();
            for &at in &[r % 5, (r % 5) + 4 + r % 3] {
                s[at] = B;
            }
            s
        })
        .collect();
    let each: f64 = seqs.iter().map(|s| row_loss(&mut m, s, Some(B))).sum();
    let inputs: Vec<u32> = seqs.iter().flat_map(|s| s[..len].to_vec()).collect();
    let targets: Vec<u32> = seqs.iter().flat_map(|s| s[1..].to_vec()).collect();
    m.reset_eval_state();
    let batch = m
        .eval_step(&inputs, &targets, rows, len, Some(B))
        .unwrap()
        .loss_sum;
    assert!((batch - each).abs() <= 1e-12 * each, "{batch} vs {each}");
}

#[test]
fn a_boundary_outside_the_vocabulary_is_a_data_error() {
    let mut m = model();
    let e = m.eval_step(&[2, 3], &[3, 4], 1, 2, Some(9)).unwrap_err();
    assert_eq!(e.code(), "E_DATA", "{e}");
    assert!(e.to_string().contains("boundaryId 9"), "{e}");
}

/// Largest absolute difference between two states.
fn state_diff(a: &lstmgen_core::State, b: &lstmgen_core::State) -> f64 {
    a.h.iter()
        .chain(&a.c)
        .zip(b.h.iter().chain(&b.c))
        .map(|(x, y)| {
            (x - y)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        })
        .fold(0.0, f64::max)
}

#[test]
fn sampling_goes_on_from_the_zero_state_after_a_boundary_in_the_prompt_or_sampled() {
    use lstmgen_core::sample::Sampler;
    use lstmgen_core::SampleConfig;
    let m = model();
    let sc = |reset_at| SampleConfig {
        num_samples: 2,
        max_tokens: 3,
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 1,
        stop_sequences: vec![],
        // only the boundary may be sampled
        banned_ids: (0..9).filter(|&id| id != B).collect(),
        reset_at,
        controls: Default::default(),
    };
    // the state after the boundary fed from the zero state: where every record starts
    let fresh = Sampler::new(&m, &[B], &sc(Some(B))).unwrap();
    let start = fresh.state().unwrap();
    // a prompt with a boundary inside: the state after it is that of what follows it alone
    let after = Sampler::new(&m, &[4, 7, 2, B], &sc(Some(B))).unwrap();
    assert!(state_diff(&after.state().unwrap(), &start) <= 1e-12);
    let carried = Sampler::new(&m, &[4, 7, 2, B], &sc(None)).unwrap();
    assert!(state_diff(&carried.state().unwrap(), &start) > 1e-6);
    // sampled boundaries: each is fed from the zero state
    let mut s = Sampler::new(&m, &[5, 3], &sc(Some(B))).unwrap();
    assert_eq!(s.next(&m, 3).unwrap(), vec![vec![B; 3]; 2]);
    assert!(state_diff(&s.state().unwrap(), &start) <= 1e-12);
    let mut on = Sampler::new(&m, &[5, 3], &sc(None)).unwrap();
    on.next(&m, 3).unwrap();
    assert!(state_diff(&on.state().unwrap(), &start) > 1e-6);
}
