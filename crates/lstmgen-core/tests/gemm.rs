//! `gemm::matmul` (OpenBLAS when linked, split across threads for large products) computes the
//! same products as candle's own matmul for every layout the engine uses.
use candle_core::{Device, Tensor};
use lstmgen_core::gemm;

fn rand(rows: usize, cols: usize, seed: u64) -> Tensor {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
}

/// Max |ours - candle| over `a @ b` for the four combinations of transposed operands.
fn check(m: usize, k: usize, n: usize) {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta { rand(k, m, 1).t().unwrap() } else { rand(m, k, 1) };
        let b = if tb { rand(n, k, 2).t().unwrap() } else { rand(k, n, 2) };
        let want = a.matmul(&b).unwrap();
        let got = gemm::matmul(&a, &b).unwrap();
        assert_eq!(got.dims(), &[m, n]);
        let diff: f32 = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap();
        // Sums of k products of values in [-0.5, 0.5): rounding differs by order only.
        assert!(
            diff <= 1e-5 * k as f32,
            "[{m},{k}]x[{k},{n}] ta={ta} tb={tb}: max diff {diff}"
        );
    }
}

#[test]
fn small_products_match_candle() {
    for (m, k, n) in [(1, 1, 1), (3, 5, 7), (1, 64, 17), (17, 1, 9), (64, 128, 512)] {
        check(m, k, n);
    }
}

#[test]
fn products_split_across_threads_match_candle() {
    // Above the single-thread threshold: row blocks (m large) and column blocks (m small),
    // with sizes that do not divide evenly.
    check(301, 129, 257);
    check(16, 512, 1037);
    check(2, 2048, 4099);
}

#[test]
fn narrowed_views_match_candle() {
    // A row range of a larger tensor starts at an offset into its storage.
    let big = rand(40, 33, 3);
    let a = big.narrow(0, 7, 20).unwrap();
    let b = rand(33, 19, 4);
    let want = a.matmul(&b).unwrap();
    let got = gemm::matmul(&a, &b).unwrap();
    let diff: f32 = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap();
    assert!(diff < 1e-4, "max diff {diff}");
}

#[test]
fn mismatched_shapes_are_an_error() {
    assert!(gemm::matmul(&rand(3, 4, 1), &rand(5, 6, 2)).is_err());
}

#[test]
fn backend_is_named() {
    let b = gemm::backend();
    assert!(b.starts_with("OpenBLAS") || b == "candle gemm crate", "{b}");
}
