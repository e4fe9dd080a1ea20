// Top-k / top-p (nucleus) filtering of next-token logits on the GPU, one block per row: tokens
// outside the kept set get -inf, the others keep their logit, so that Gumbel-max sampling of the
// result (sample.rs) draws from the renormalised kept distribution and only the ids leave the GPU.
// The kept set is {l >= tau}: tau is found by bisection on the logit value, each step a block-wide
// count (top-k: the k largest) or probability mass (top-p: the smallest set of most likely tokens
// whose mass under softmax(l / T) reaches top_p of the top-k set's), as on the host (sample.rs),
// except that tokens tied exactly at the boundary are all kept (the host breaks ties by id).
// Banned tokens arrive as -inf and stay -inf. Also the per-row Philox uniforms of the Gumbel draw.
// Compiled to PTX by build.rs (feature `cuda`) and loaded by src/cuda/sample.rs.

#include "reduce.cuh"

// Number of logits >= tau (mass == 0) or their mass sum exp((l - mx) * inv_t) (mass == 1).
__device__ float kept(const float* row, unsigned int vocab, float tau, int mass, float mx,
                      float inv_t, float* sh) {
  float acc = 0.0f;
  for (unsigned int i = threadIdx.x; i < vocab; i += blockDim.x) {
    float l = row[i];
    if (l >= tau) acc += mass ? expf((l - mx) * inv_t) : 1.0f;
  }
  return block_sum(acc, sh);
}

// The largest tau in [lo, hi] with measure(>= tau) >= target, knowing measure(>= lo) >= target.
__device__ float bisect(const float* row, unsigned int vocab, float lo, float hi, float target,
                        int mass, float mx, float inv_t, float* sh) {
  if (kept(row, vocab, hi, mass, mx, inv_t, sh) >= target) return hi;
  for (int it = 0; it < 80; it++) {  // measure(>= hi) < target throughout
    float mid = lo + (hi - lo) * 0.5f;
    if (!(mid > lo && mid < hi)) break;  // lo and hi are adjacent floats
    if (kept(row, vocab, mid, mass, mx, inv_t, sh) >= target) lo = mid;
    else hi = mid;
  }
  return lo;
}

extern "C" __global__ void topk_topp_filter_f32(const float* __restrict__ logits,
                                                float* __restrict__ out, unsigned int vocab,
                                                unsigned int top_k, float top_p, float inv_t) {
  __shared__ float sh[33];
  const float* row = logits + (size_t)blockIdx.x * vocab;
  float* orow = out + (size_t)blockIdx.x * vocab;
  float mx = -INFINITY, mn = INFINITY;
  for (unsigned int i = threadIdx.x; i < vocab; i += blockDim.x) {
    mx = fmaxf(mx, row[i]);
    if (row[i] > -INFINITY) mn = fminf(mn, row[i]);  // banned tokens (-inf) stay out of the range
  }
  mx = block_max(mx, sh, 1.0f);
  mn = block_max(mn, sh, -1.0f);
  if (!(mn <= mx)) mn = mx;  // no finite logit: keep what there is
  float tau = mn;  // everything finite kept
  if (top_k > 0 && top_k < vocab) tau = bisect(row, vocab, mn, mx, (float)top_k, 0, mx, inv_t, sh);
  if (top_p < 1.0f) {
    float z = kept(row, vocab, tau, 1, mx, inv_t, sh);
    tau = bisect(row, vocab, tau, mx, top_p * z, 1, mx, inv_t, sh);
  }
  for (unsigned int i = threadIdx.x; i < vocab; i += blockDim.x) {
    float l = row[i];
    orow[i] = l >= tau ? l : -INFINITY;
  }
}

// One token per row by the Gumbel-max trick: argmax_i(l_i / t - ln(-ln u_i)), u uniform in (0, 1]
// (cuRAND's range); u is clamped below 1 so that u = 1 gives the largest finite perturbation
// instead of +inf. Ties go to the lowest id. One block per row; ids are written as u32.
extern "C" __global__ void gumbel_argmax_f32(const float* __restrict__ logits,
                                             const float* __restrict__ u,
                                             unsigned int* __restrict__ ids, unsigned int vocab,
                                             float t) {
  __shared__ float shv[33];
  __shared__ unsigned int shi[33];
  const float* row = logits + (size_t)blockIdx.x * vocab;
  const float* urow = u + (size_t)blockIdx.x * vocab;
  float best = -INFINITY;
  unsigned int arg = 0xffffffffu;
  for (unsigned int i = threadIdx.x; i < vocab; i += blockDim.x) {
    float ui = fminf(fmaxf(urow[i], 1.17549435e-38f), 0.99999994f);
    float v = row[i] / t - logf(-logf(ui));
    if (v > best) {  // NaN never wins; a row with no value above -inf gives id 0
      best = v;
      arg = i;
    }
  }
  block_argmax(&best, &arg, shv, shi);
  if (threadIdx.x == 0) ids[blockIdx.x] = arg == 0xffffffffu ? 0u : arg;
}

// Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"; Random123's
// philox4x32_10): the first output word of counter (c0, c1, c2, c3) under key (k0, k1).
__device__ unsigned int philox4x32_10(unsigned int c0, unsigned int c1, unsigned int c2,
                                      unsigned int c3, unsigned int k0, unsigned int k1) {
  for (int r = 0; r < 10; r++) {
    unsigned int hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    unsigned int hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

// Uniforms in (0, 1) for sampling, one block per row: out[row][i] from Philox4x32-10 with key =
// seed and counter (i, stream, step, step >> 32), where stream = first_stream + row; the value is
// ((x >> 9) + 0.5) * 2^-23. Each sample's stream depends on (seed, stream, step) only, never on
// how many rows are drawn; src/ops/sample.rs computes the same numbers on the host.
extern "C" __global__ void philox_uniform_f32(float* __restrict__ out, unsigned int vocab,
                                              unsigned int seed_lo, unsigned int seed_hi,
                                              unsigned int first_stream, unsigned int step_lo,
                                              unsigned int step_hi) {
  float* orow = out + (size_t)blockIdx.x * vocab;
  unsigned int stream = first_stream + blockIdx.x;
  for (unsigned int i = threadIdx.x; i < vocab; i += blockDim.x) {
    unsigned int x = philox4x32_10(i, stream, step_lo, step_hi, seed_lo, seed_hi);
    orow[i] = ((float)(x >> 9) + 0.5f) * 1.1920928955078125e-7f;
  }
}
