// CUDA twins of composite_cpu.cpp, the same arithmetic and the same early termination, in two layouts:
//
// - one thread per ray (any channel count): each thread walks its ray as the CPU does;
// - one group of kGroup lanes per ray (warp-cooperative, 1 or 3 channels): the group loads kGroup consecutive
//   samples at a time (coalesced), computes their transmittances by a product scan over the group (in double,
//   times the product carried from earlier tiles), finds early termination by a ballot, and keeps per-lane
//   sums that are reduced once at the end. The backward pass turns the CPU's running "remaining" sum into a
//   prefix-sum scan over the same tiles. Both layouts save the same (trans, alphas, live) for the backward
//   pass; they differ from each other and from the CPU by rounding only (the order of the products and sums).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "composite.h"

namespace {

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

__global__ void PackedChunksCudaKernel(
    const int64_t* __restrict__ ri,
    int64_t n,
    int64_t n_rays,
    int64_t* __restrict__ first,
    int* __restrict__ bad) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i > n) return;
  if (i == n) {  // rays after the last sample start at n
    for (int64_t r = n > 0 ? ri[n - 1] + 1 : 0; r <= n_rays; ++r) {
      if (r >= 0) first[r] = n;
    }
    return;
  }
  const int64_t cur = ri[i];
  const int64_t prev = i == 0 ? -1 : ri[i - 1];
  if (cur < prev || cur < 0 || cur >= n_rays) {
    atomicOr(bad, 1);
    return;
  }
  for (int64_t r = prev + 1 > 0 ? prev + 1 : 0; r <= cur; ++r) first[r] = i;
}

inline int NumBlocks(int64_t n) {
  return static_cast<int>((n + kThreads - 1) / kThreads);
}

// Calls f(std::integral_constant<int, kGroup>{}) with the group width of the cooperative kernels: a warp per ray
// when rays hold 16 samples or more on average, else 8 lanes (fewer idle lanes on short rays).
template <typename F>
inline void DispatchGroup(int64_t n_samples, int64_t n_rays, F&& f) {
  if (n_samples >= 16 * n_rays) {
    f(std::integral_constant<int, 32>{});
  } else {
    f(std::integral_constant<int, 8>{});
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> CompositeCuda(
    const at::Tensor& sigmas,
    const at::Tensor& values,
    const at::Tensor& t_starts,
    const at::Tensor& t_ends,
    const at::Tensor& chunk_starts,
    const at::Tensor& chunk_cnts,
    double eps,
    bool save_aux,
    bool cooperative) {
  RENDERERS_CHECK_CUDA(sigmas);
  c10::cuda::CUDAGuard device_guard(sigmas.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t n_rays = chunk_starts.size(0);
  const int64_t n_samples = sigmas.size(0);
  const int64_t n_channels = values.size(1);
  cooperative = cooperative && (n_channels == 1 || n_channels == 3);  // the group kernels unroll 1 or 3 channels
  auto out_values = at::zeros({n_rays, n_channels}, sigmas.options());
  auto out_opacity = at::zeros({n_rays}, sigmas.options());
  auto out_depth = at::zeros({n_rays}, sigmas.options());
  auto trans = at::empty({save_aux ? n_samples : 0}, sigmas.options());
  auto live = at::zeros({save_aux ? n_rays : 0}, chunk_starts.options());
  // The thread layout reads alphas computed beforehand; the group layout computes (and saves) them itself.
  auto alphas = cooperative ? at::empty({save_aux ? n_samples : 0}, sigmas.options())
                            : CompositeAlphas(sigmas, t_starts, t_ends);
  if (n_rays > 0) {
    AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "CompositeCuda", [&] {
      ForwardArgs<scalar_t> args{
          sigmas.data_ptr<scalar_t>(), cooperative ? nullptr : alphas.data_ptr<scalar_t>(),
          values.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>(),
          chunk_starts.data_ptr<int64_t>(), chunk_cnts.data_ptr<int64_t>(), n_rays, n_channels,
          static_cast<scalar_t>(eps), out_values.data_ptr<scalar_t>(), out_opacity.data_ptr<scalar_t>(),
          out_depth.data_ptr<scalar_t>(), save_aux ? trans.data_ptr<scalar_t>() : nullptr,
          save_aux && cooperative ? alphas.data_ptr<scalar_t>() : nullptr,
          save_aux ? live.data_ptr<int64_t>() : nullptr};
      RenderersDispatchChannels(n_channels, [&](auto kc) {
        constexpr int kC = decltype(kc)::value;
        if constexpr (kC > 0) {
          if (cooperative) {
            DispatchGroup(n_samples, n_rays, [&](auto kg) {
              constexpr int kGroup = decltype(kg)::value;
              CompositeForwardGroupKernel<scalar_t, kC, kGroup>
                  <<<NumBlocks(n_rays * kGroup), kThreads, 0, stream>>>(args);
            });
            return;
          }
        }
        CompositeForwardCudaKernel<scalar_t, kC><<<NumBlocks(n_rays), kThreads, 0, stream>>>(args);
      });
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (!save_aux) alphas = at::empty({0}, sigmas.options());
  return std::make_tuple(out_values, out_opacity, out_depth, trans, alphas, live);
}

std::tuple<at::Tensor, at::Tensor> CompositeBackwardCuda(
    const at::Tensor& grad_values,
    const at::Tensor& grad_opacity,
    const at::Tensor& grad_depth,
    const at::Tensor& values,
    const at::Tensor& t_starts,
    const at::Tensor& t_ends,
    const at::Tensor& chunk_starts,
    const at::Tensor& chunk_cnts,
    const at::Tensor& out_values,
    const at::Tensor& out_opacity,
    const at::Tensor& out_depth,
    const at::Tensor& trans,
    const at::Tensor& alphas,
    const at::Tensor& live_cnts,
    bool cooperative) {
  RENDERERS_CHECK_CUDA(values);
  c10::cuda::CUDAGuard device_guard(values.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t n_rays = chunk_starts.size(0);
  const int64_t n_samples = values.size(0);
  const int64_t n_channels = values.size(1);
  cooperative = cooperative && (n_channels == 1 || n_channels == 3);
  // Every sample belongs to one chunk, whose thread (or group) writes its gradient (zero after early termination).
  auto grad_sigmas = at::empty({n_samples}, values.options());
  auto grad_vals = at::empty_like(values);
  if (n_rays == 0 || n_samples == 0) return std::make_tuple(grad_sigmas, grad_vals);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "CompositeBackwardCuda", [&] {
    BackwardArgs<scalar_t> args{
        grad_values.data_ptr<scalar_t>(), grad_opacity.data_ptr<scalar_t>(), grad_depth.data_ptr<scalar_t>(),
        values.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>(),
        chunk_starts.data_ptr<int64_t>(), chunk_cnts.data_ptr<int64_t>(), out_values.data_ptr<scalar_t>(),
        out_opacity.data_ptr<scalar_t>(), out_depth.data_ptr<scalar_t>(), trans.data_ptr<scalar_t>(),
        alphas.data_ptr<scalar_t>(), live_cnts.data_ptr<int64_t>(), n_rays, n_channels,
        grad_sigmas.data_ptr<scalar_t>(), grad_vals.data_ptr<scalar_t>()};
    RenderersDispatchChannels(n_channels, [&](auto kc) {
      constexpr int kC = decltype(kc)::value;
      if constexpr (kC > 0) {
        if (cooperative) {
          DispatchGroup(n_samples, n_rays, [&](auto kg) {
            constexpr int kGroup = decltype(kg)::value;
            CompositeBackwardGroupKernel<scalar_t, kC, kGroup>
                <<<NumBlocks(n_rays * kGroup), kThreads, 0, stream>>>(args);
          });
          return;
        }
      }
      CompositeBackwardCudaKernel<scalar_t, kC><<<NumBlocks(n_rays), kThreads, 0, stream>>>(args);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return std::make_tuple(grad_sigmas, grad_vals);
}

std::tuple<at::Tensor, at::Tensor> PackedChunksCuda(const at::Tensor& ray_indices, int64_t n_rays) {
  RENDERERS_CHECK_CUDA(ray_indices);
  c10::cuda::CUDAGuard device_guard(ray_indices.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t n = ray_indices.numel();
  auto bounds = at::empty({n_rays + 1}, ray_indices.options());
  auto bad = at::zeros({1}, ray_indices.options().dtype(at::kInt));
  PackedChunksCudaKernel<<<NumBlocks(n + 1), kThreads, 0, stream>>>(
      ray_indices.data_ptr<int64_t>(), n, n_rays, bounds.data_ptr<int64_t>(), bad.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  TORCH_CHECK_VALUE(bad.item<int>() == 0, "ray_indices must be sorted and lie in [0, n_rays=", std::to_string(n_rays),
                    ")");
  auto starts = bounds.narrow(0, 0, n_rays);
  auto cnts = bounds.narrow(0, 1, n_rays).sub(starts);
  return std::make_tuple(starts.contiguous(), cnts);
}
