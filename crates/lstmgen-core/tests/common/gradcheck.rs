//! The one finite-difference gradient checker of the engine's tests: every element of every
//! parameter's analytic gradient against the central difference of an objective.
//! Tolerance: |analytic - numeric| <= 1e-6 + 1e-5 * |numeric|, with step 1e-6 (the parameters
//! must be f64 for differences this small to be exact enough).

use candle_core::Tensor;

/// Central-difference step.
pub const EPS: f64 = 1e-6;

/// What a check covered.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    /// Gradient elements compared.
    pub elements: usize,
    /// Largest |analytic - numeric| seen.
    pub worst: f64,
}

/// Compares `analytic[k]` (same shapes as `params[k]`) with `(f(p + eps e_j) - f(p - eps e_j))
/// / (2 eps)` for every element j of every parameter k, where `objective` evaluates a full
/// parameter list (in the same order). Panics naming `what`, the parameter and the element on the
/// first mismatch, or when a gradient has the wrong size.
pub fn check_gradients(
    params: &[Tensor],
    analytic: &[Tensor],
    objective: impl Fn(&[Tensor]) -> f64,
    what: &str,
) -> Checked {
    assert_eq!(
        params.len(),
        analytic.len(),
        "{what}: one gradient per parameter"
    );
    let mut out = Checked {
        elements: 0,
        worst: 0.0,
    };
    for (k, p) in params.iter().enumerate() {
        let base = p.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let grad = analytic[k].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(
            base.len(),
            grad.len(),
            "{what}: gradient {k} has the wrong size"
        );
        for j in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut ps = params.to_vec();
                ps[k] = Tensor::from_vec(v, p.shape(), p.device()).unwrap();
                objective(&ps)
            };
            let numeric = (eval(EPS) - eval(-EPS)) / (2.0 * EPS);
            let err = (grad[j] - numeric).abs();
            out.worst = out.worst.max(err);
            assert!(
                err <= 1e-6 + 1e-5 * numeric.abs(),
                "{what}: param {k} element {j}: analytic {} vs numeric {numeric}",
                grad[j]
            );
            out.elements += 1;
        }
    }
    eprintln!(
        "gradcheck {what}: {} elements, worst abs error {:e}",
        out.elements, out.worst
    );
    out
}
