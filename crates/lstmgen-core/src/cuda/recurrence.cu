// The LSTM recurrence of a whole sequence in one cooperative launch per layer and direction, with the
// recurrent weight resident in shared memory across all timesteps (after FlashRNN, Pöppel et al. 2024,
// arXiv 2412.07752, and cuDNN's persistent RNN kernels, Diamos et al. 2016). Same equations as
// lstm_cell.cu and the engine's cell op (PyTorch nn.LSTM, gates i, f, g, o; backward after Graves 2013).
//
// Work split: block k owns the hidden units j0 = k*U .. j0+U-1 of every batch row. Forward, it keeps
// the 4U rows of W_hh [4H, H] that produce those units' gates (rows g*H + j0 + u) in shared memory;
// each step it multiplies the whole h_{t-1} [B, H] (read from global memory, where every block wrote
// its units of h at the previous step) by them, adds the precomputed input projection xw [T*B, 4H]
// (x W_ih^T + b, one cuBLAS product before the launch), applies the cell, and writes its units of h_t.
// Backward, it keeps the U columns of W_hh for its units; each step it turns dh, dc of its units
// into dz [B, 4H] sections, and after the grid barrier multiplies all of dz_t by its columns to get
// the recurrent dh_{t-1} of its units. A grid-wide barrier (a counter in global memory) separates
// the steps; it needs every block resident at once, which the host guarantees by launching with
// cuLaunchCooperativeKernel (refused when the grid cannot be co-resident) and at most one block per SM.
//
// Record resets (src/resets.rs): keep[t*B + b] = 0 where row b resets entering step t: forward the
// state entering step t is multiplied by it, backward the gradients flowing to step t-1.
// Layouts: time-major rows (row t*B + b), row-major, contiguous; state [B, H], z-shaped [.., 4H].
// Compiled by build.rs (feature `cuda`) and launched by src/cuda/recurrence.rs; checked on the host
// against plain loops by recurrence_emulated.cpp (a test of src/recurrence.rs), on a GPU by
// scripts/gpu/check.sh.

#define THREADS 256   // threads per block; the host's plan assumes it
#define RB_MAX 8      // batch rows per thread in a product tile (registers)
#define WPAD 4        // floats of padding per resident weight row: conflict-free float4 reads

// The block's dynamic shared memory (recurrence_emulated.cpp, which runs these kernels on the host
// for the tests, defines it as a per-block buffer).
#ifndef DYNAMIC_SHARED
#define DYNAMIC_SHARED(name) extern __shared__ float4 name[]
#endif

__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

// Nanoseconds of the GPU's global timer (the emulator defines its own).
#ifndef BARRIER_CLOCK_NS
__device__ __forceinline__ unsigned long long barrier_clock_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
#endif

// A block that waits this long at one barrier aborts the launch (a launch failure the host reports)
// instead of hanging: a step takes microseconds, so only blocks that are not all resident wait so long.
#define BARRIER_TIMEOUT_NS 5000000000ull

// Grid-wide barrier number `n` (0, 1, ...): all blocks arrive before any leaves. `counter` starts at 0.
// Writes before it are visible to every block after it (fence on both sides of the counter).
__device__ __forceinline__ void grid_barrier(unsigned int* counter, unsigned int n) {
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned int target = gridDim.x * (n + 1);
    __threadfence();
    atomicAdd(counter, 1u);
    volatile unsigned int* c = counter;
    unsigned long long start = barrier_clock_ns();
    while (*c < target) {
      __nanosleep(32);
      if (barrier_clock_ns() - start > BARRIER_TIMEOUT_NS) __trap();
    }
    __threadfence();
  }
  __syncthreads();
}

// The product tiles below multiply a [B, K] operand A in global memory (row b at A + b*lda, 16-byte
// aligned, K a multiple of 4) by the resident operand ws [nq, K + WPAD] in shared memory: thread
// (q = tid % nq, rg = tid / nq) accumulates acc[i] = sum_k A[b0 + rg + ngrp*i][k] * ws[q][k] for i < rb,
// ngrp = THREADS / nq. A goes through shared memory hs [ngrp*rb, kcs + WPAD] in chunks of kcs columns
// (rows past B read as 0), read with ld.global.cg (L2, not L1): other blocks wrote it in this launch.

// Loads in flight per thread while staging: the loads of a batch are issued before any of their
// stores, so that a chunk costs about one L2 round trip rather than one per load.
#define STAGE_BATCH 8

// Stages rows b0 .. b0 + rows - 1 (rows past B as 0), columns kc .. kc + kl - 1 of A into hs.
__device__ __forceinline__ void stage(const float* A, size_t lda, unsigned int b0, unsigned int B,
                                      unsigned int rows, unsigned int kc, unsigned int kl, float* hs,
                                      unsigned int hstride) {
  const unsigned int k4n = kl >> 2, total = rows * k4n;
  for (unsigned int base = threadIdx.x; base < total; base += THREADS * STAGE_BATCH) {
    float4 v[STAGE_BATCH];
#pragma unroll
    for (int s = 0; s < STAGE_BATCH; s++) {
      unsigned int idx = base + s * THREADS, r = idx / k4n, k4 = idx - r * k4n;
      v[s] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (idx < total && b0 + r < B) v[s] = __ldcg(reinterpret_cast<const float4*>(A + (size_t)(b0 + r) * lda + kc) + k4);
    }
#pragma unroll
    for (int s = 0; s < STAGE_BATCH; s++) {
      unsigned int idx = base + s * THREADS, r = idx / k4n, k4 = idx - r * k4n;
      if (idx < total) reinterpret_cast<float4*>(hs + (size_t)r * hstride)[k4] = v[s];
    }
  }
}

// acc[i] += sum over the staged chunk (kl columns, starting at column kc of ws) of hs[rg + ngrp*i] . ws[q].
__device__ __forceinline__ void accumulate(const float* ws, unsigned int wstride, const float* hs,
                                           unsigned int hstride, unsigned int kc, unsigned int kl,
                                           unsigned int q, unsigned int rg, unsigned int ngrp,
                                           unsigned int rb, float acc[RB_MAX]) {
  const float4* w4 = reinterpret_cast<const float4*>(ws + (size_t)q * wstride + kc);
  for (unsigned int k4 = 0; k4 < (kl >> 2); k4++) {
    float4 w = w4[k4];
#pragma unroll
    for (int i = 0; i < RB_MAX; i++) {
      if (i < (int)rb) {
        float4 h = reinterpret_cast<const float4*>(hs + (size_t)(rg + ngrp * i) * hstride)[k4];
        acc[i] = fmaf(w.x, h.x, acc[i]);
        acc[i] = fmaf(w.y, h.y, acc[i]);
        acc[i] = fmaf(w.z, h.z, acc[i]);
        acc[i] = fmaf(w.w, h.w, acc[i]);
      }
    }
  }
}

// The product of one batch tile (rows b0 .. b0 + ngrp*rb - 1) by the resident operand: acc as above.
__device__ __forceinline__ void product(const float* A, size_t lda, unsigned int b0, unsigned int B,
                                        unsigned int K, const float* ws, float* hs, unsigned int kcs,
                                        unsigned int q, unsigned int rg, unsigned int ngrp,
                                        unsigned int rb, float acc[RB_MAX]) {
#pragma unroll
  for (int i = 0; i < RB_MAX; i++) acc[i] = 0.0f;
  unsigned int rows = ngrp * rb;
  for (unsigned int kc = 0; kc < K; kc += kcs) {
    unsigned int kl = min(kcs, K - kc);
    stage(A, lda, b0, B, rows, kc, kl, hs, kcs + WPAD);
    __syncthreads();
    accumulate(ws, K + WPAD, hs, kcs + WPAD, kc, kl, q, rg, ngrp, rb, acc);
    __syncthreads();  // hs is overwritten by the next chunk
  }
}

// Forward over T steps. Shared memory (dynamic, floats): ws [4U, H + WPAD], hs [ngrp*rb, kcs + WPAD],
// zs [ngrp*rb, 4U + 1], cs [B, U] (the cell state of the block's units). With want_cache, also the
// activated gates [T*B, 4H], the cell state each step used (masked c_{t-1}) and tanh(c_t) [T*B, H]
// for the backward pass; otherwise those pointers are not touched.
extern "C" __global__ void __launch_bounds__(THREADS, 1)
    lstm_recurrence_fwd_f32(const float* __restrict__ xw, const float* __restrict__ w_hh,
                            const float* __restrict__ h0, const float* __restrict__ c0,
                            const float* __restrict__ keep, float* out, float* __restrict__ gates,
                            float* __restrict__ c_used, float* __restrict__ tanh_c,
                            float* __restrict__ h_last, float* __restrict__ c_last, unsigned int* barrier,
                            unsigned int T, unsigned int B, unsigned int H, unsigned int U,
                            unsigned int rb, unsigned int kcs, int has_keep, int want_cache) {
  DYNAMIC_SHARED(smem4);
  float* smem = reinterpret_cast<float*>(smem4);
  const unsigned int nq = 4 * U, ngrp = THREADS / nq, rows = ngrp * rb, zstride = nq + 1;
  const unsigned int wstride = H + WPAD;
  float* ws = smem;
  float* hs = ws + (size_t)nq * wstride;
  float* zs = hs + (size_t)rows * (kcs + WPAD);
  float* cs = zs + (size_t)rows * zstride;
  const unsigned int tid = threadIdx.x, q = tid % nq, rg = tid / nq;
  const unsigned int j0 = blockIdx.x * U;
  const size_t H4 = 4 * (size_t)H;

  // resident rows: q = gate * U + u holds W_hh row gate * H + j0 + u (loads batched as in stage)
  const unsigned int wtotal = nq * (H >> 2);
  for (unsigned int base = tid; base < wtotal; base += THREADS * STAGE_BATCH) {
    float4 v[STAGE_BATCH];
#pragma unroll
    for (int s = 0; s < STAGE_BATCH; s++) {
      unsigned int idx = base + s * THREADS, r = idx / (H >> 2), k4 = idx - r * (H >> 2);
      if (idx < wtotal)
        v[s] = __ldg(reinterpret_cast<const float4*>(w_hh + ((size_t)(r / U) * H + j0 + r % U) * H) + k4);
    }
#pragma unroll
    for (int s = 0; s < STAGE_BATCH; s++) {
      unsigned int idx = base + s * THREADS, r = idx / (H >> 2), k4 = idx - r * (H >> 2);
      if (idx < wtotal) reinterpret_cast<float4*>(ws + (size_t)r * wstride)[k4] = v[s];
    }
  }
  for (unsigned int idx = tid; idx < B * U; idx += THREADS) cs[idx] = c0[(size_t)(idx / U) * H + j0 + idx % U];
  __syncthreads();

  float acc[RB_MAX];
  for (unsigned int t = 0; t < T; t++) {
    const float* hp = t == 0 ? h0 : out + (size_t)(t - 1) * B * H;
    for (unsigned int b0 = 0; b0 < B; b0 += rows) {
      product(hp, H, b0, B, H, ws, hs, kcs, q, rg, ngrp, rb, acc);
      // z = keep * (h W_hh^T) + xw: the mask scales the whole row of h, so it scales the product
#pragma unroll
      for (int i = 0; i < RB_MAX; i++) {
        unsigned int r = rg + ngrp * i, b = b0 + r;
        if (i < (int)rb && b < B) {
          size_t row = (size_t)t * B + b;
          float m = has_keep ? keep[row] : 1.0f;
          zs[r * zstride + q] = fmaf(m, acc[i], __ldg(xw + row * H4 + (size_t)(q / U) * H + j0 + q % U));
        }
      }
      __syncthreads();
      for (unsigned int idx = tid; idx < rows * U; idx += THREADS) {
        unsigned int r = idx / U, u = idx - r * U, b = b0 + r;
        if (b >= B) continue;
        size_t row = (size_t)t * B + b;
        const float* z = zs + r * zstride + u;
        float ig = sigmoid_f32(z[0]);
        float fg = sigmoid_f32(z[U]);
        float gg = tanhf(z[2 * U]);
        float og = sigmoid_f32(z[3 * U]);
        float cp = cs[b * U + u];
        if (has_keep) cp *= keep[row];
        float cn = fg * cp + ig * gg;
        float tc = tanhf(cn);
        float hn = og * tc;
        unsigned int j = j0 + u;
        out[row * H + j] = hn;
        if (want_cache) {
          size_t zr = row * H4 + j;
          gates[zr] = ig;
          gates[zr + H] = fg;
          gates[zr + 2 * (size_t)H] = gg;
          gates[zr + 3 * (size_t)H] = og;
          c_used[row * H + j] = cp;
          tanh_c[row * H + j] = tc;
        }
        cs[b * U + u] = cn;
        if (t + 1 == T) {
          h_last[(size_t)b * H + j] = hn;
          c_last[(size_t)b * H + j] = cn;
        }
      }
      __syncthreads();  // zs is reused by the next tile
    }
    if (t + 1 < T) grid_barrier(barrier, t);
  }
}

// Backward through T steps (truncated BPTT: nothing flows into h0, c0). Inputs: the forward cache
// (gates [T*B, 4H], c_used and tanh_c [T*B, H]) and d_out [T*B, H], the gradient of the loss w.r.t.
// every step's h from above. Output: dz [T*B, 4H], the gradient w.r.t. the pre-activations, from which
// the host takes the weight, bias and input gradients as products. Shared memory (dynamic, floats):
// ws [U, 4H + WPAD] (column j0 + u of W_hh as row u), hs [ngrp*rb, kcs + WPAD], dh [B, U] (recurrent part of
// dh for the next step down), dc [B, U].
extern "C" __global__ void __launch_bounds__(THREADS, 1)
    lstm_recurrence_bwd_f32(const float* __restrict__ w_hh, const float* __restrict__ gates,
                            const float* __restrict__ c_used, const float* __restrict__ tanh_c,
                            const float* __restrict__ d_out, const float* __restrict__ keep, float* dz,
                            unsigned int* barrier, unsigned int T, unsigned int B, unsigned int H,
                            unsigned int U, unsigned int rb, unsigned int kcs, int has_keep) {
  DYNAMIC_SHARED(smem4);
  float* smem = reinterpret_cast<float*>(smem4);
  const unsigned int nq = U, ngrp = THREADS / nq, rows = ngrp * rb;
  const unsigned int K = 4 * H, wstride = K + WPAD;
  float* ws = smem;
  float* hs = ws + (size_t)nq * wstride;
  float* dhs = hs + (size_t)rows * (kcs + WPAD);
  float* dcs = dhs + (size_t)B * U;
  const unsigned int tid = threadIdx.x, q = tid % nq, rg = tid / nq;
  const unsigned int j0 = blockIdx.x * U;
  const size_t H4 = K;

  // resident columns: ws[u][k] = W_hh[k][j0 + u] (loads batched as in stage)
  const unsigned int wtotal = U * K;
  for (unsigned int base = tid; base < wtotal; base += THREADS * STAGE_BATCH) {
    float v[STAGE_BATCH];
#pragma unroll
    for (int s = 0; s < STAGE_BATCH; s++) {
      unsigned int idx = base + s * THREADS, k = idx / U, u = idx - k * U;
      if (idx < wtotal) v[s] = __ldg(w_hh + (size_t)k * H + j0 + u);
    }
#pragma unroll
    for (int s = 0; s < STAGE_BATCH; s++) {
      unsigned int idx = base + s * THREADS, k = idx / U, u = idx - k * U;
      if (idx < wtotal) ws[(size_t)u * wstride + k] = v[s];
    }
  }
  for (unsigned int idx = tid; idx < B * U; idx += THREADS) {
    dhs[idx] = 0.0f;
    dcs[idx] = 0.0f;
  }
  __syncthreads();

  float acc[RB_MAX];
  for (unsigned int s = 0; s < T; s++) {
    unsigned int t = T - 1 - s;
    // this step's dz for the block's units, and dc_{t-1} (masked) for the next step down
    for (unsigned int idx = tid; idx < B * U; idx += THREADS) {
      unsigned int b = idx / U, u = idx - b * U, j = j0 + u;
      size_t row = (size_t)t * B + b, zr = row * H4 + j;
      float ig = gates[zr], fg = gates[zr + H], gg = gates[zr + 2 * (size_t)H], og = gates[zr + 3 * (size_t)H];
      float tc = tanh_c[row * H + j];
      float dh = d_out[row * H + j] + dhs[idx];
      float dc = dcs[idx] + dh * og * (1.0f - tc * tc);
      dz[zr] = dc * gg * ig * (1.0f - ig);
      dz[zr + H] = dc * c_used[row * H + j] * fg * (1.0f - fg);
      dz[zr + 2 * (size_t)H] = dc * ig * (1.0f - gg * gg);
      dz[zr + 3 * (size_t)H] = dh * tc * og * (1.0f - og);
      dcs[idx] = has_keep ? dc * fg * keep[row] : dc * fg;
    }
    if (t == 0) break;
    grid_barrier(barrier, s);  // every block's part of dz_t is written
    // recurrent dh_{t-1} = keep_t * (dz_t W_hh) for the block's units
    const float* a = dz + (size_t)t * B * H4;
    for (unsigned int b0 = 0; b0 < B; b0 += rows) {
      product(a, H4, b0, B, K, ws, hs, kcs, q, rg, ngrp, rb, acc);
#pragma unroll
      for (int i = 0; i < RB_MAX; i++) {
        unsigned int b = b0 + rg + ngrp * i;
        if (i < (int)rb && b < B) dhs[b * U + q] = has_keep ? acc[i] * keep[(size_t)t * B + b] : acc[i];
      }
    }
    __syncthreads();  // dhs is read by other threads in the next step
  }
}
