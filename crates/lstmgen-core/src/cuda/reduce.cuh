// Block-wide reductions shared by lstmgen's CUDA kernels (included by sample.cu and loss.cu).
// Blocks have a multiple of 32 threads, at most 1024; the shared arrays hold 33 entries.
#pragma once

#define FULL_MASK 0xffffffffu

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v, float* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();  // sh may still be read from the previous call
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nw ? sh[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    if (lane == 0) sh[32] = v;
  }
  __syncthreads();
  return sh[32];
}

// Max (sign = 1) or min (sign = -1) over the block; every thread gets the result.
__device__ float block_max(float v, float* sh, float sign) {
  v *= sign;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nw ? sh[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    if (lane == 0) sh[32] = v;
  }
  __syncthreads();
  return sh[32] * sign;
}

// (value, id) maximum over the block: larger value wins, then the lower id; ids of 0xffffffff mean
// "none" and lose to any real candidate. Every thread gets the result.
__device__ void block_argmax(float* best, unsigned int* arg, float* shv, unsigned int* shi) {
  float b = *best;
  unsigned int a = *arg;
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(FULL_MASK, b, o);
    unsigned int oi = __shfl_xor_sync(FULL_MASK, a, o);
    if (ov > b || (ov == b && oi < a)) {
      b = ov;
      a = oi;
    }
  }
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) {
    shv[warp] = b;
    shi[warp] = a;
  }
  __syncthreads();
  if (warp == 0) {
    b = lane < nw ? shv[lane] : -INFINITY;
    a = lane < nw ? shi[lane] : 0xffffffffu;
    for (int o = 16; o > 0; o >>= 1) {
      float ov = __shfl_xor_sync(FULL_MASK, b, o);
      unsigned int oi = __shfl_xor_sync(FULL_MASK, a, o);
      if (ov > b || (ov == b && oi < a)) {
        b = ov;
        a = oi;
      }
    }
    if (lane == 0) {
      shv[32] = b;
      shi[32] = a;
    }
  }
  __syncthreads();
  *best = shv[32];
  *arg = shi[32];
}
