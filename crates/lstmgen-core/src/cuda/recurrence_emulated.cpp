// Runs the persistent recurrence kernels of recurrence.cu on the host and compares them with plain
// loops of the same equations (in double), so that their indexing, tiling, resets and grid barrier
// are tested without a GPU. Every CUDA thread of every block is a std::thread (all blocks resident
// at once, as the cooperative launch guarantees on a GPU), __syncthreads is a std::barrier per block,
// and the dynamic shared memory is a per-block buffer of exactly the planned size (built with
// AddressSanitizer by the test, which catches any access past it or past a global buffer).
//
//   recurrence_emulated H B T  Uf RBf KCf SMEMf  Ub RBb KCb SMEMb  HAS_KEEP SEED
// (the tiling of each pass as crate::recurrence::plan gives it). Prints the largest differences;
// exits 1 when one exceeds its tolerance, 2 on bad arguments.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <thread>
#include <vector>

struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
struct dim3u {
  unsigned int x, y, z;
};
thread_local dim3u threadIdx, blockIdx;
dim3u gridDim, blockDim;
thread_local std::barrier<>* block_barrier;
thread_local float4* block_shared;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define DYNAMIC_SHARED(name) float4* name = block_shared
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned int) { std::this_thread::yield(); }
#define BARRIER_CLOCK_NS
inline unsigned long long barrier_clock_ns() {
  return (unsigned long long)std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
[[noreturn]] inline void __trap() {
  std::fprintf(stderr, "grid barrier timed out\n");
  std::abort();
}
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline float4 __ldcg(const float4* p) {
  std::atomic_thread_fence(std::memory_order_acquire);
  return *p;
}
inline float4 __ldg(const float4* p) { return *p; }
inline float __ldg(const float* p) { return *p; }
using std::min;

#include "recurrence.cu"

// Launches `call` as a grid of `blocks` blocks of THREADS threads with `shared_bytes` of shared memory each.
template <class F>
void launch(unsigned int blocks, size_t shared_bytes, F call) {
  gridDim = {blocks, 1, 1};
  blockDim = {THREADS, 1, 1};
  std::vector<std::unique_ptr<float4[]>> shared;
  std::vector<std::unique_ptr<std::barrier<>>> bars;
  for (unsigned int b = 0; b < blocks; b++) {
    shared.emplace_back(new float4[(shared_bytes + 15) / 16]);
    bars.emplace_back(new std::barrier<>(THREADS));
  }
  std::vector<std::thread> threads;
  for (unsigned int b = 0; b < blocks; b++)
    for (unsigned int t = 0; t < THREADS; t++)
      threads.emplace_back([&, b, t] {
        threadIdx = {t, 0, 0};
        blockIdx = {b, 0, 0};
        block_barrier = bars[b].get();
        block_shared = shared[b].get();
        call();
      });
  for (auto& t : threads) t.join();
}

static double sig(double x) { return 1.0 / (1.0 + std::exp(-x)); }

int main(int argc, char** argv) {
  if (argc != 14) {
    std::fprintf(stderr, "usage: %s H B T Uf RBf KCf SMEMf Ub RBb KCb SMEMb HAS_KEEP SEED\n", argv[0]);
    return 2;
  }
  unsigned int a[13];
  for (int i = 0; i < 13; i++) a[i] = (unsigned int)std::strtoul(argv[i + 1], nullptr, 10);
  const unsigned int H = a[0], B = a[1], T = a[2], Uf = a[3], RBf = a[4], KCf = a[5], Ub = a[7], RBb = a[8],
                     KCb = a[9];
  const size_t SMf = a[6], SMb = a[10];
  const int has_keep = (int)a[11];
  const size_t N = (size_t)T * B, H4 = 4 * (size_t)H;

  std::mt19937 rng(a[12]);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto fill = [&](size_t n, float scale) {
    std::vector<float> v(n);
    for (auto& x : v) x = scale * u(rng);
    return v;
  };
  std::vector<float> xw = fill(N * H4, 1.0f), w = fill(H4 * H, 1.5f / std::sqrt((float)H)), h0 = fill((size_t)B * H, 0.8f),
                     c0 = fill((size_t)B * H, 0.8f), d_out = fill(N * H, 1.0f), keep(N, 1.0f);
  if (has_keep)
    for (size_t r = 0; r < N; r++) keep[r] = (r * 7 + 3) % 5 == 0 ? 0.0f : 1.0f;

  // forward in plain loops (double)
  std::vector<double> h(h0.begin(), h0.end()), c(c0.begin(), c0.end());
  std::vector<double> out(N * H), gates(N * H4), c_used(N * H), tanh_c(N * H), z(H4);
  for (unsigned int t = 0; t < T; t++) {
    for (unsigned int b = 0; b < B; b++) {
      size_t row = (size_t)t * B + b;
      double m = keep[row];
      for (size_t q = 0; q < H4; q++) {
        double s = xw[row * H4 + q];
        for (unsigned int k = 0; k < H; k++) s += w[q * H + k] * m * h[(size_t)b * H + k];
        z[q] = s;
      }
      for (unsigned int j = 0; j < H; j++) {
        double i = sig(z[j]), f = sig(z[H + j]), g = std::tanh(z[2 * H + j]), o = sig(z[3 * H + j]);
        double cp = m * c[(size_t)b * H + j], cn = f * cp + i * g, tc = std::tanh(cn);
        out[row * H + j] = o * tc;
        gates[row * H4 + j] = i, gates[row * H4 + H + j] = f, gates[row * H4 + 2 * H + j] = g,
                          gates[row * H4 + 3 * H + j] = o;
        c_used[row * H + j] = cp, tanh_c[row * H + j] = tc;
        c[(size_t)b * H + j] = cn;
      }
      for (unsigned int j = 0; j < H; j++) h[(size_t)b * H + j] = out[row * H + j];
    }
  }
  // backward in plain loops, from the reference forward's cache
  std::vector<double> dz(N * H4), dh_rec((size_t)B * H, 0.0), dc((size_t)B * H, 0.0);
  for (unsigned int s = 0; s < T; s++) {
    unsigned int t = T - 1 - s;
    for (unsigned int b = 0; b < B; b++) {
      size_t row = (size_t)t * B + b;
      for (unsigned int j = 0; j < H; j++) {
        size_t zr = row * H4 + j;
        double i = gates[zr], f = gates[zr + H], g = gates[zr + 2 * H], o = gates[zr + 3 * H], tc = tanh_c[row * H + j];
        double dh = d_out[row * H + j] + dh_rec[(size_t)b * H + j];
        double dcv = dc[(size_t)b * H + j] + dh * o * (1 - tc * tc);
        dz[zr] = dcv * g * i * (1 - i);
        dz[zr + H] = dcv * c_used[row * H + j] * f * (1 - f);
        dz[zr + 2 * H] = dcv * i * (1 - g * g);
        dz[zr + 3 * H] = dh * tc * o * (1 - o);
        dc[(size_t)b * H + j] = keep[row] * dcv * f;
      }
      for (unsigned int k = 0; k < H; k++) {
        double acc = 0;
        for (size_t q = 0; q < H4; q++) acc += dz[row * H4 + q] * w[q * H + k];
        dh_rec[(size_t)b * H + k] = keep[row] * acc;
      }
    }
  }

  // the kernels
  std::vector<float> k_out(N * H), k_gates(N * H4), k_cu(N * H), k_tc(N * H), k_h((size_t)B * H), k_c((size_t)B * H);
  unsigned int counter = 0;
  launch(H / Uf, SMf, [&] {
    lstm_recurrence_fwd_f32(xw.data(), w.data(), h0.data(), c0.data(), keep.data(), k_out.data(), k_gates.data(),
                            k_cu.data(), k_tc.data(), k_h.data(), k_c.data(), &counter, T, B, H, Uf, RBf, KCf,
                            has_keep, 1);
  });
  std::vector<float> f_gates(gates.begin(), gates.end()), f_cu(c_used.begin(), c_used.end()),
      f_tc(tanh_c.begin(), tanh_c.end()), k_dz(N * H4);
  unsigned int counter_b = 0;
  launch(H / Ub, SMb, [&] {
    lstm_recurrence_bwd_f32(w.data(), f_gates.data(), f_cu.data(), f_tc.data(), d_out.data(), keep.data(),
                            k_dz.data(), &counter_b, T, B, H, Ub, RBb, KCb, has_keep);
  });

  auto worst = [](const std::vector<float>& got, const std::vector<double>& want, size_t from = 0) {
    double m = 0;
    for (size_t i = 0; i < want.size(); i++) m = std::max(m, std::fabs((double)got[from + i] - want[i]));
    return m;
  };
  std::vector<double> h_last(h.begin(), h.end()), c_last(c.begin(), c.end());
  double e_out = worst(k_out, out), e_gates = worst(k_gates, gates), e_cu = worst(k_cu, c_used),
         e_tc = worst(k_tc, tanh_c), e_h = worst(k_h, h_last), e_c = worst(k_c, c_last), e_dz = worst(k_dz, dz);
  double dz_scale = 0;
  for (double x : dz) dz_scale = std::max(dz_scale, std::fabs(x));
  std::printf("forward: out %.2e gates %.2e c_used %.2e tanh_c %.2e h_last %.2e c_last %.2e; "
              "backward: dz %.2e (max |dz| %.2e); barrier counts %u %u\n",
              e_out, e_gates, e_cu, e_tc, e_h, e_c, e_dz, dz_scale, counter, counter_b);
  const double tol = 1e-4;
  bool ok = e_out < tol && e_gates < tol && e_cu < tol && e_tc < tol && e_h < tol && e_c < tol &&
            e_dz < tol * std::max(1.0, dz_scale) && counter == (H / Uf) * (T - 1) && counter_b == (H / Ub) * (T - 1);
  return ok ? 0 : 1;
}
