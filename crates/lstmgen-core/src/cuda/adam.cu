// One AdamW update of one parameter tensor on the GPU, one thread per element: exactly the
// formulas of the CPU loop in src/ops/adam.rs (Kingma & Ba 2015; decoupled weight decay, Loshchilov & Hutter 2019):
//   g' = g*scale; m' = beta1*m + (1-beta1)*g'; v' = beta2*v + (1-beta2)*g'^2
//   p' = p*decay - step_size * m' / (sqrt(v'/bc2) + eps), step_size = lr/bc1, decay = 1 - lr*wd.
// one_b1 = 1 - beta1 and one_b2 = 1 - beta2 come rounded from f64, as on the CPU.
// New p, m and v go to fresh buffers (the engine's tensors are immutable).
// Compiled to PTX by build.rs (feature `cuda`) and loaded by src/cuda/adam.rs.

extern "C" __global__ void adam_f32(
    const float* __restrict__ p, const float* __restrict__ g, const float* __restrict__ m,
    const float* __restrict__ v, float* __restrict__ p_out, float* __restrict__ m_out,
    float* __restrict__ v_out, unsigned int n, float scale, float beta1, float one_b1, float beta2, float one_b2, float bc2,
    float eps, float step_size, float decay) {
  for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
    float gi = g[i] * scale;
    float mi = m[i] * beta1 + gi * one_b1;
    float vi = v[i] * beta2 + gi * gi * one_b2;
    p_out[i] = p[i] * decay - mi / (sqrtf(vi / bc2) + eps) * step_size;
    m_out[i] = mi;
    v_out[i] = vi;
  }
}
