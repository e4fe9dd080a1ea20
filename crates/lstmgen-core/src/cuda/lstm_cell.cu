// One LSTM time step's elementwise work on the GPU, forward and backward, one thread per (row, unit).
// The same equations as the CPU's fused loops in src/ops/cell.rs (PyTorch nn.LSTM gate order i, f, g, o):
//   forward:  c = f*c_prev + i*g, h = o*tanh(c)
//   backward (Graves 2013): dc = dc_next + dh*o*(1 - tanh(c)^2); dz_i = dc*g*i(1-i),
//             dz_f = dc*c_prev*f(1-f), dz_g = dc*i*(1-g^2), dz_o = dh*tanh(c)*o(1-o); dc_prev = dc*f.
// All arrays are contiguous, row-major: z-shaped ones [batch, 4*hd], state-shaped ones [batch, hd].
// Compiled to PTX by build.rs (feature `cuda`) and loaded by src/cuda/cell.rs.

__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

extern "C" __global__ void lstm_cell_fwd_f32(
    const float* __restrict__ zx, const float* __restrict__ zh, const float* __restrict__ c_prev,
    float* __restrict__ gates, float* __restrict__ c, float* __restrict__ tanh_c, float* __restrict__ h,
    unsigned int batch, unsigned int hd) {
  unsigned int n = batch * hd;
  for (unsigned int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += blockDim.x * gridDim.x) {
    unsigned int r = k / hd, j = k - r * hd;
    size_t z = (size_t)r * 4 * hd + j;
    float i = sigmoid_f32(zx[z] + zh[z]);
    float f = sigmoid_f32(zx[z + hd] + zh[z + hd]);
    float g = tanhf(zx[z + 2 * hd] + zh[z + 2 * hd]);
    float o = sigmoid_f32(zx[z + 3 * hd] + zh[z + 3 * hd]);
    gates[z] = i;
    gates[z + hd] = f;
    gates[z + 2 * hd] = g;
    gates[z + 3 * hd] = o;
    float cn = f * c_prev[k] + i * g;
    float t = tanhf(cn);
    c[k] = cn;
    tanh_c[k] = t;
    h[k] = o * t;
  }
}

// dh_rec and dc_next are read only when has_next != 0 (the last step of a sequence has neither).
extern "C" __global__ void lstm_cell_bwd_f32(
    const float* __restrict__ gates, const float* __restrict__ c_prev, const float* __restrict__ tanh_c,
    const float* __restrict__ dh_out, const float* __restrict__ dh_rec, const float* __restrict__ dc_next,
    float* __restrict__ dz, float* __restrict__ dc_prev, unsigned int batch, unsigned int hd,
    int has_next) {
  unsigned int n = batch * hd;
  for (unsigned int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += blockDim.x * gridDim.x) {
    unsigned int r = k / hd, j = k - r * hd;
    size_t z = (size_t)r * 4 * hd + j;
    float i = gates[z], f = gates[z + hd], g = gates[z + 2 * hd], o = gates[z + 3 * hd];
    float t = tanh_c[k];
    float dh = dh_out[k] + (has_next ? dh_rec[k] : 0.0f);
    float dc = (has_next ? dc_next[k] : 0.0f) + dh * o * (1.0f - t * t);
    dz[z] = dc * g * i * (1.0f - i);
    dz[z + hd] = dc * c_prev[k] * f * (1.0f - f);
    dz[z + 2 * hd] = dc * i * (1.0f - g * g);
    dz[z + 3 * hd] = dh * t * o * (1.0f - o);
    dc_prev[k] = dc * f;
  }
}
