// Softmax cross-entropy of one row of logits per block, fused (the GPU counterpart of src/ops/loss.rs's
// CPU loop): loss_r = logsumexp(x_r) - x_r[t_r] (nats), correct_r = 1 if argmax(x_r) == t_r (the
// lowest id among equal maxima), and, when grad is not null, dL/dx_r = (softmax(x_r) - onehot(t_r))
// * inv_n (the gradient of the mean loss). Three reads of the row and one write, where candle ops
// make about twelve passes. Compiled to PTX by build.rs (feature `cuda`), loaded by src/cuda/loss.rs.
#include "reduce.cuh"

extern "C" __global__ void softmax_xent_f32(const float* __restrict__ logits,
                                            const unsigned int* __restrict__ targets,
                                            float* __restrict__ grad, float* __restrict__ row_loss,
                                            float* __restrict__ row_correct, unsigned int vocab,
                                            float inv_n, int want_grad) {
  __shared__ float shv[33];
  __shared__ unsigned int shi[33];
  const float* row = logits + (size_t)blockIdx.x * vocab;
  unsigned int target = targets[blockIdx.x];
  float best = -INFINITY;
  unsigned int arg = 0xffffffffu;
  for (unsigned int i = threadIdx.x; i < vocab; i += blockDim.x) {
    float v = row[i];
    if (v > best || (arg == 0xffffffffu && v == best)) {
      best = v;
      arg = i;
    }
  }
  block_argmax(&best, &arg, shv, shi);
  float mx = best;
  float acc = 0.0f;
  for (unsigned int i = threadIdx.x; i < vocab; i += blockDim.x) acc += expf(row[i] - mx);
  float z = block_sum(acc, shv);
  if (threadIdx.x == 0) {
    row_loss[blockIdx.x] = logf(z) - (row[target] - mx);
    row_correct[blockIdx.x] = arg == target ? 1.0f : 0.0f;
  }
  if (want_grad) {
    float* g = grad + (size_t)blockIdx.x * vocab;
    float inv_z = 1.0f / z;
    for (unsigned int i = threadIdx.x; i < vocab; i += blockDim.x)
      g[i] = (expf(row[i] - mx) * inv_z - (i == target ? 1.0f : 0.0f)) * inv_n;
  }
}
