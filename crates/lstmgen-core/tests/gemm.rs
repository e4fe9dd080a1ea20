//! `gemm::matmul` (OpenBLAS when linked, else the engine's blocked kernels; split across threads
//! for large products) computes the same products as candle's own matmul for every layout the
//! engine uses.
mod common;

use candle_core::Tensor;
use common::{bf16, max_abs, rand};
use lstmgen_core::gemm::{self, Precision};

/// `[rows, cols]` random, stored row-major or (`trans`) as the transpose of a `[cols, rows]` one.
fn operand(rows: usize, cols: usize, trans: bool, seed: u64) -> Tensor {
    if trans {
        rand(cols, rows, seed).t().unwrap()
    } else {
        rand(rows, cols, seed)
    }
}

/// The four combinations of transposed operands.
const LAYOUTS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// Max |ours - candle| over `a @ b` for the four combinations of transposed operands.
fn check(m: usize, k: usize, n: usize) {
    for (ta, tb) in LAYOUTS {
        let (a, b) = (operand(m, k, ta, 1), operand(k, n, tb, 2));
        let want = a.matmul(&b).unwrap();
        let got = gemm::matmul(&a, &b, Precision::F32).unwrap();
        assert_eq!(got.dims(), &[m, n]);
        let diff = max_abs((got - want).unwrap());
        // Sums of k products of values in [-0.5, 0.5): rounding differs by order only.
        assert!(
            diff <= 1e-5 * k as f32,
            "[{m},{k}]x[{k},{n}] ta={ta} tb={tb}: max diff {diff}"
        );
    }
}

#[test]
fn small_products_match_candle() {
    for (m, k, n) in [
        (1, 1, 1),
        (3, 5, 7),
        (1, 64, 17),
        (17, 1, 9),
        (64, 128, 512),
    ] {
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
    let got = gemm::matmul(&a, &b, Precision::F32).unwrap();
    let diff = max_abs((got - want).unwrap());
    assert!(diff < 1e-4, "max diff {diff}");
}

#[test]
fn mismatched_shapes_are_an_error() {
    assert!(gemm::matmul(&rand(3, 4, 1), &rand(5, 6, 2), Precision::F32).is_err());
}

#[test]
fn backend_is_named() {
    let b = gemm::backend();
    assert!(
        b.starts_with("OpenBLAS") || b.starts_with("lstmgen blocked kernels"),
        "{b}"
    );
    assert!(b.contains("; bf16: "), "{b}");
}

/// bf16 products (AMX tiles where the CPU has them, else emulated) equal the f32 product of the
/// bf16-rounded operands up to f32 summation order, for every layout and ragged sizes that
/// exercise the tile padding and the parallel split.
#[test]
fn bf16_products_match_rounded_f32_products() {
    for (m, k, n) in [
        (1, 1, 1),
        (3, 5, 7),
        (33, 31, 65),
        (64, 512, 2048),
        (300, 129, 40),
        (2, 1000, 17),
    ] {
        for (ta, tb) in LAYOUTS {
            let (a, b) = (operand(m, k, ta, 5), operand(k, n, tb, 6));
            let want = bf16(&a).matmul(&bf16(&b)).unwrap();
            let got = gemm::matmul(&a, &b, Precision::Bf16).unwrap();
            assert_eq!(got.dims(), &[m, n]);
            let diff = max_abs((&got - &want).unwrap());
            assert!(
                diff <= 2e-6 * k as f32,
                "[{m},{k}]x[{k},{n}] ta={ta} tb={tb}: {diff}"
            );
            // and differ from the f32 product by no more than bf16 rounding allows
            let exact = a.matmul(&b).unwrap();
            let err = max_abs((&got - &exact).unwrap());
            assert!(
                err <= 0.01 * (k as f32).sqrt() + 1e-6,
                "bf16 error {err} for k={k}"
            );
        }
    }
}

/// A packed right operand (f32: the AVX-512 kernel for small row counts; bf16: AMX panels) gives the
/// products of candle's f32 matmul of the same operands (bf16: of the bf16-rounded operands), for row
/// counts that exercise the 8-row blocks and their remainders and column counts around the 48-column
/// panels, with the weight stored transposed (as `w_hh.t()`) or row-major.
#[test]
fn packed_operands_match_candle() {
    for (m, k, n) in [
        (1, 64, 96),
        (7, 33, 47),
        (9, 128, 49),
        (32, 512, 2048),
        (300, 40, 100),
    ] {
        for tb in [true, false] {
            let w = operand(k, n, tb, 7);
            for p in [Precision::F32, Precision::Bf16] {
                let packed = gemm::pack(&w, p).unwrap();
                for seed in 0..2 {
                    let h = rand(m, k, 10 + seed);
                    let got = gemm::matmul_packed(&h, &packed).unwrap();
                    let want = match p {
                        Precision::F32 => h.matmul(&w).unwrap(),
                        Precision::Bf16 => bf16(&h).matmul(&bf16(&w)).unwrap(),
                    };
                    let diff = max_abs((got - want).unwrap());
                    assert!(
                        diff <= 2e-6 * k as f32,
                        "{p:?} [{m},{k}]x[{k},{n}] tb={tb}: {diff}"
                    );
                }
            }
        }
    }
}
