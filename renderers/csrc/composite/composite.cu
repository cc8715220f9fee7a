// CUDA twins of composite_cpu.cpp: launches of the kernels in composite_kernels.cuh, and the per-ray offsets of
// packed samples.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "composite.h"
#include "composite_kernels.cuh"

namespace {

using namespace composite_kernels;

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

// Calls launch(kc, kg) once, with the integral constants of the kernel to run: kC the channel count (0: read at run
// time) and kGroup the lanes per ray (0: the thread-per-ray kernels). The cooperative kernels run for 1 or 3 channels
// when asked, a warp per ray when rays hold 16 samples or more on average, else 8 lanes (fewer idle lanes on short
// rays); every other case runs the thread-per-ray kernels.
template <typename F>
inline void DispatchLayout(int64_t n_channels, int64_t n_samples, int64_t n_rays, bool cooperative, F&& launch) {
  RenderersDispatchChannels(n_channels, [&](auto kc) {
    if constexpr (decltype(kc)::value > 0) {
      if (cooperative) {
        if (n_samples >= 16 * n_rays) {
          launch(kc, std::integral_constant<int, 32>{});
        } else {
          launch(kc, std::integral_constant<int, 8>{});
        }
        return;
      }
    }
    launch(kc, std::integral_constant<int, 0>{});
  });
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
      DispatchLayout(n_channels, n_samples, n_rays, cooperative, [&](auto kc, auto kg) {
        constexpr int kC = decltype(kc)::value, kGroup = decltype(kg)::value;
        if constexpr (kGroup > 0) {
          CompositeForwardGroupKernel<scalar_t, kC, kGroup><<<NumBlocks(n_rays * kGroup), kThreads, 0, stream>>>(args);
        } else {
          CompositeForwardCudaKernel<scalar_t, kC><<<NumBlocks(n_rays), kThreads, 0, stream>>>(args);
        }
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
    DispatchLayout(n_channels, n_samples, n_rays, cooperative, [&](auto kc, auto kg) {
      constexpr int kC = decltype(kc)::value, kGroup = decltype(kg)::value;
      if constexpr (kGroup > 0) {
        CompositeBackwardGroupKernel<scalar_t, kC, kGroup><<<NumBlocks(n_rays * kGroup), kThreads, 0, stream>>>(args);
      } else {
        CompositeBackwardCudaKernel<scalar_t, kC><<<NumBlocks(n_rays), kThreads, 0, stream>>>(args);
      }
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
