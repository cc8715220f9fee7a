// Device code of the CUDA twins of composite_cpu.cpp (launched from composite.cu): the same arithmetic and the same
// early termination, in two layouts:
//
// - one thread per ray (any channel count): each thread walks its ray as the CPU does;
// - one group of kGroup lanes per ray (warp-cooperative, 1 or 3 channels): the group loads kGroup consecutive
//   samples at a time (coalesced), computes their transmittances by a product scan over the group (in double,
//   times the product carried from earlier tiles), finds early termination by a ballot, and keeps per-lane
//   sums that are reduced once at the end. The backward pass turns the CPU's running "remaining" sum into a
//   prefix-sum scan over the same tiles. Both layouts save the same (trans, alphas, live) for the backward
//   pass; they differ from each other and from the CPU by rounding only (the order of the products and sums).
//
// Plain CUDA C++ on raw pointers (no ATen), so that tests/renderers/simt can also run these kernels on the CPU under
// an emulation of warps (lanes as threads, shuffles and votes through shared buffers).
#pragma once
#include <cmath>
#include <cstdint>

namespace composite_kernels {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

// Lanes of the calling thread's group of kGroup (a power of two dividing 32) within its warp.
template <int kGroup>
__device__ __forceinline__ unsigned GroupMask() {
  if constexpr (kGroup == kWarp) {
    return 0xffffffffu;
  } else {
    const unsigned first = (threadIdx.x % kWarp) / kGroup * kGroup;
    return ((1u << kGroup) - 1u) << first;
  }
}

// Inclusive scan over the group (Hillis-Steele, log2(kGroup) shuffles); op is * or +.
template <int kGroup, bool kProduct>
__device__ __forceinline__ double GroupInclusiveScan(double x, int lane, unsigned mask) {
#pragma unroll
  for (int d = 1; d < kGroup; d <<= 1) {
    const double y = __shfl_up_sync(mask, x, d, kGroup);
    if (lane >= d) x = kProduct ? x * y : x + y;
  }
  return x;
}

template <int kGroup>
__device__ __forceinline__ double GroupSum(double x, unsigned mask) {
#pragma unroll
  for (int d = kGroup / 2; d > 0; d >>= 1) x += __shfl_xor_sync(mask, x, d, kGroup);
  return x;
}

// Pointers and sizes of one forward launch, either layout.
template <typename scalar_t>
struct ForwardArgs {
  const scalar_t* sigmas;  // read by the group layout, which computes alpha itself
  const scalar_t* alphas;  // read by the thread layout (CompositeAlphas)
  const scalar_t* values;  // (N, C)
  const scalar_t* t_starts;
  const scalar_t* t_ends;
  const int64_t* chunk_starts;
  const int64_t* chunk_cnts;
  int64_t n_rays;
  int64_t n_channels;
  scalar_t eps;
  scalar_t* out_values;  // (R, C), zeros
  scalar_t* out_opacity;
  scalar_t* out_depth;
  scalar_t* out_trans;   // nullptr: not saved
  scalar_t* out_alphas;  // written by the group layout; nullptr: not saved
  int64_t* out_live;     // nullptr: not saved
};

// Pointers and sizes of one backward launch, either layout.
template <typename scalar_t>
struct BackwardArgs {
  const scalar_t* grad_values;  // (R, C)
  const scalar_t* grad_opacity;
  const scalar_t* grad_depth;
  const scalar_t* values;
  const scalar_t* t_starts;
  const scalar_t* t_ends;
  const int64_t* chunk_starts;
  const int64_t* chunk_cnts;
  const scalar_t* out_values;
  const scalar_t* out_opacity;
  const scalar_t* out_depth;
  const scalar_t* trans;
  const scalar_t* alphas;
  const int64_t* live_cnts;
  int64_t n_rays;
  int64_t n_channels;
  scalar_t* grad_sigmas;  // (N,)
  scalar_t* grad_vals;    // (N, C)
};

// Forward, one thread per ray. kC > 0: channel count known at compile time; kC == 0: n_channels at run time.
template <typename scalar_t, int kC>
__global__ void CompositeForwardCudaKernel(const ForwardArgs<scalar_t> a) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= a.n_rays) return;
  const int64_t n_ch = kC > 0 ? kC : a.n_channels;
  const int64_t start = a.chunk_starts[r];
  const int64_t end = start + a.chunk_cnts[r];
  double trans = 1;  // transmittance before the current sample, accumulated in double as on the CPU
  scalar_t opacity = 0;
  scalar_t depth = 0;
  scalar_t* v_out = a.out_values + r * n_ch;
  int64_t i = start;
  for (; i < end; ++i) {
    const scalar_t t = static_cast<scalar_t>(trans);
    if (t < a.eps) break;
    const scalar_t alpha = a.alphas[i];
    const scalar_t w = t * alpha;
    const scalar_t* v = a.values + i * n_ch;
    for (int64_t c = 0; c < n_ch; ++c) v_out[c] += w * v[c];
    opacity += w;
    depth += w * ((a.t_starts[i] + a.t_ends[i]) * scalar_t(0.5));
    if (a.out_trans != nullptr) a.out_trans[i] = t;
    trans *= static_cast<double>(scalar_t(1) - alpha);
  }
  if (a.out_live != nullptr) a.out_live[r] = i - start;
  a.out_opacity[r] = opacity;
  a.out_depth[r] = depth;
}

// Forward, one group per ray. alpha_i is computed here, with the same operations as CompositeAlphas.
template <typename scalar_t, int kC, int kGroup>
__global__ void __launch_bounds__(kThreads) CompositeForwardGroupKernel(const ForwardArgs<scalar_t> a) {
  static_assert(kC > 0 && kWarp % kGroup == 0, "a known channel count and a group dividing the warp");
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kGroup;
  if (r >= a.n_rays) return;  // the whole group leaves together
  const int lane = static_cast<int>(threadIdx.x % kGroup);
  const int group_shift = static_cast<int>(threadIdx.x % kWarp) / kGroup * kGroup;
  const unsigned mask = GroupMask<kGroup>();
  const int64_t start = a.chunk_starts[r];
  const int64_t end = start + a.chunk_cnts[r];
  double carry = 1;  // transmittance before the current tile
  double acc[kC];
#pragma unroll
  for (int c = 0; c < kC; ++c) acc[c] = 0;
  double opacity = 0;
  double depth = 0;
  int64_t live_end = end;
  for (int64_t base = start; base < end; base += kGroup) {
    const int64_t i = base + lane;
    const bool in = i < end;
    scalar_t alpha = 0;
    scalar_t ts = 0;
    scalar_t te = 0;
    if (in) {
      ts = a.t_starts[i];
      te = a.t_ends[i];
      alpha = -::expm1(-((te - ts) * a.sigmas[i]));
    }
    const double f = static_cast<double>(static_cast<scalar_t>(scalar_t(1) - alpha));  // 1 outside the ray
    const double incl = GroupInclusiveScan<kGroup, true>(f, lane, mask);
    double excl = __shfl_up_sync(mask, incl, 1, kGroup);
    if (lane == 0) excl = 1;
    const scalar_t t = static_cast<scalar_t>(carry * excl);
    // Early termination at the first sample of the tile whose transmittance is below eps.
    const unsigned dead = (__ballot_sync(mask, in && t < a.eps) & mask) >> group_shift;
    const int n_live = dead != 0 ? __ffs(dead) - 1 : kGroup;
    if (in && lane < n_live) {
      const scalar_t w = t * alpha;
      const scalar_t* v = a.values + i * kC;
#pragma unroll
      for (int c = 0; c < kC; ++c) acc[c] += static_cast<double>(w * v[c]);
      opacity += w;
      depth += static_cast<double>(w * ((ts + te) * scalar_t(0.5)));
      if (a.out_trans != nullptr) {
        a.out_trans[i] = t;
        a.out_alphas[i] = alpha;
      }
    }
    if (dead != 0) {
      live_end = base + n_live;
      break;
    }
    carry *= __shfl_sync(mask, incl, kGroup - 1, kGroup);
  }
#pragma unroll
  for (int c = 0; c < kC; ++c) acc[c] = GroupSum<kGroup>(acc[c], mask);
  opacity = GroupSum<kGroup>(opacity, mask);
  depth = GroupSum<kGroup>(depth, mask);
  if (lane == 0) {
#pragma unroll
    for (int c = 0; c < kC; ++c) a.out_values[r * kC + c] = static_cast<scalar_t>(acc[c]);
    a.out_opacity[r] = static_cast<scalar_t>(opacity);
    a.out_depth[r] = static_cast<scalar_t>(depth);
    if (a.out_live != nullptr) a.out_live[r] = live_end - start;
  }
}

// Backward, one thread per ray; see composite_cpu.cpp for the derivation.
template <typename scalar_t, int kC>
__global__ void CompositeBackwardCudaKernel(const BackwardArgs<scalar_t> a) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= a.n_rays) return;
  const int64_t n_ch = kC > 0 ? kC : a.n_channels;
  const int64_t start = a.chunk_starts[r];
  const int64_t end = start + a.live_cnts[r];
  // Terminated samples (after the live prefix) get zero gradients.
  for (int64_t i = end; i < start + a.chunk_cnts[r]; ++i) {
    a.grad_sigmas[i] = 0;
    for (int64_t c = 0; c < n_ch; ++c) a.grad_vals[i * n_ch + c] = 0;
  }
  const scalar_t* gv = a.grad_values + r * n_ch;
  const scalar_t go = a.grad_opacity[r];
  const scalar_t gd = a.grad_depth[r];
  double remaining = static_cast<double>(gd) * a.out_depth[r] + static_cast<double>(go) * a.out_opacity[r];
  for (int64_t c = 0; c < n_ch; ++c) remaining += static_cast<double>(gv[c]) * a.out_values[r * n_ch + c];
  for (int64_t i = start; i < end; ++i) {
    const scalar_t w = a.trans[i] * a.alphas[i];
    const scalar_t* v = a.values + i * n_ch;
    scalar_t* gval = a.grad_vals + i * n_ch;
    double vi = gd * ((a.t_starts[i] + a.t_ends[i]) * scalar_t(0.5)) + go;
    for (int64_t c = 0; c < n_ch; ++c) {
      vi += gv[c] * v[c];
      gval[c] = w * gv[c];
    }
    remaining -= w * vi;
    const double grad_tau = (a.trans[i] - w) * vi - remaining;
    a.grad_sigmas[i] = static_cast<scalar_t>(grad_tau * (a.t_ends[i] - a.t_starts[i]));
  }
}

// Backward, one group per ray. "remaining" after sample i is the forward total sum_j w_j v_j minus the inclusive
// prefix sum of w_j v_j: a scan over the tiles.
template <typename scalar_t, int kC, int kGroup>
__global__ void __launch_bounds__(kThreads) CompositeBackwardGroupKernel(const BackwardArgs<scalar_t> a) {
  static_assert(kC > 0 && kWarp % kGroup == 0, "a known channel count and a group dividing the warp");
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kGroup;
  if (r >= a.n_rays) return;
  const int lane = static_cast<int>(threadIdx.x % kGroup);
  const unsigned mask = GroupMask<kGroup>();
  const int64_t start = a.chunk_starts[r];
  const int64_t live_end = start + a.live_cnts[r];
  const int64_t end = start + a.chunk_cnts[r];
  for (int64_t i = live_end + lane; i < end; i += kGroup) {  // terminated samples: zero gradients
    a.grad_sigmas[i] = 0;
#pragma unroll
    for (int c = 0; c < kC; ++c) a.grad_vals[i * kC + c] = 0;
  }
  scalar_t gv[kC];
#pragma unroll
  for (int c = 0; c < kC; ++c) gv[c] = a.grad_values[r * kC + c];
  const scalar_t go = a.grad_opacity[r];
  const scalar_t gd = a.grad_depth[r];
  double total = static_cast<double>(gd) * a.out_depth[r] + static_cast<double>(go) * a.out_opacity[r];
#pragma unroll
  for (int c = 0; c < kC; ++c) total += static_cast<double>(gv[c]) * a.out_values[r * kC + c];
  double carry = 0;  // sum of w_j v_j over the earlier tiles
  for (int64_t base = start; base < live_end; base += kGroup) {
    const int64_t i = base + lane;
    const bool in = i < live_end;
    scalar_t w = 0;
    scalar_t t = 0;
    scalar_t ts = 0;
    scalar_t te = 0;
    double vi = 0;
    if (in) {
      t = a.trans[i];
      w = t * a.alphas[i];
      ts = a.t_starts[i];
      te = a.t_ends[i];
      vi = gd * ((ts + te) * scalar_t(0.5)) + go;
      const scalar_t* v = a.values + i * kC;
      scalar_t* gval = a.grad_vals + i * kC;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        vi += gv[c] * v[c];
        gval[c] = w * gv[c];
      }
    }
    const double incl = GroupInclusiveScan<kGroup, false>(in ? w * vi : 0.0, lane, mask);
    if (in) {
      const double remaining = total - (carry + incl);
      const double grad_tau = (t - w) * vi - remaining;
      a.grad_sigmas[i] = static_cast<scalar_t>(grad_tau * (te - ts));
    }
    carry += __shfl_sync(mask, incl, kGroup - 1, kGroup);
  }
}

}  // namespace composite_kernels
