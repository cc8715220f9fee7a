// Fused volume compositing of packed samples (samples of one ray are contiguous).
//
// For ray r the samples are [chunk_starts[r], chunk_starts[r] + chunk_cnts[r]). With
// alpha_i = 1 - exp(-sigma_i * (t_end_i - t_start_i)) and T_i = prod_{j<i} (1 - alpha_j) (exclusive):
//   w_i = T_i * alpha_i                      (0 once T_i < eps: early termination)
//   values[r]  = sum_i w_i * values_i        (C channels)
//   opacity[r] = sum_i w_i
//   depth[r]   = sum_i w_i * (t_start_i + t_end_i) / 2
#pragma once
#include <ATen/ops/expm1.h>

#include <tuple>

#include "../utils.h"

// Forward. Returns (values (R, C), opacity (R,), depth (R,), trans (N,), alphas (N,), live_cnts (R,)). The last
// three are saved for the backward pass when save_aux is true (else they are empty): the transmittance and alpha
// of each live sample, and the number of live samples of each ray (the samples before early termination).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> CompositeCpu(
    const at::Tensor& sigmas,        // (N,)
    const at::Tensor& values,        // (N, C)
    const at::Tensor& t_starts,      // (N,)
    const at::Tensor& t_ends,        // (N,)
    const at::Tensor& chunk_starts,  // (R,) int64
    const at::Tensor& chunk_cnts,    // (R,) int64
    double eps,
    bool save_aux);

// Backward from the forward outputs and saved tensors. Returns (grad_sigmas (N,), grad_values (N, C)). The chunks
// must tile [0, N) (as the forward's chunks from PackedChunks or a batched layout do).
std::tuple<at::Tensor, at::Tensor> CompositeBackwardCpu(
    const at::Tensor& grad_values,   // (R, C)
    const at::Tensor& grad_opacity,  // (R,)
    const at::Tensor& grad_depth,    // (R,)
    const at::Tensor& values,        // (N, C)
    const at::Tensor& t_starts,      // (N,)
    const at::Tensor& t_ends,        // (N,)
    const at::Tensor& chunk_starts,  // (R,), with chunk_cnts tiling [0, N)
    const at::Tensor& chunk_cnts,    // (R,)
    const at::Tensor& out_values,    // (R, C) forward outputs
    const at::Tensor& out_opacity,   // (R,)
    const at::Tensor& out_depth,     // (R,)
    const at::Tensor& trans,         // (N,) saved by the forward pass
    const at::Tensor& alphas,        // (N,)
    const at::Tensor& live_cnts);    // (R,)

// CUDA twins (composite.cu). cooperative: one group of lanes per ray (warp-cooperative scans; 1 or 3 channels,
// other channel counts use the thread-per-ray kernels) instead of one thread per ray. The saved tensors are the
// same either way. The CPU ignores it.
#ifdef WITH_CUDA
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> CompositeCuda(
    const at::Tensor& sigmas,
    const at::Tensor& values,
    const at::Tensor& t_starts,
    const at::Tensor& t_ends,
    const at::Tensor& chunk_starts,
    const at::Tensor& chunk_cnts,
    double eps,
    bool save_aux,
    bool cooperative);

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
    bool cooperative);
#endif

// Per-ray offsets of packed samples: (chunk_starts (R,), chunk_cnts (R,)) from sorted ray_indices (N,) int64.
// Raises a ValueError when ray_indices is not sorted or leaves [0, n_rays).
std::tuple<at::Tensor, at::Tensor> PackedChunksCpu(const at::Tensor& ray_indices, int64_t n_rays);
#ifdef WITH_CUDA
std::tuple<at::Tensor, at::Tensor> PackedChunksCuda(const at::Tensor& ray_indices, int64_t n_rays);
#endif

inline std::tuple<at::Tensor, at::Tensor> PackedChunks(const at::Tensor& ray_indices, int64_t n_rays) {
  TORCH_CHECK(ray_indices.dim() == 1, "ray_indices must be (N,)");
  RENDERERS_CHECK_DTYPE(ray_indices, at::kLong);
  TORCH_CHECK(n_rays >= 0, "n_rays must be non-negative");
  if (ray_indices.is_cuda()) {
#ifdef WITH_CUDA
    return PackedChunksCuda(ray_indices.contiguous(), n_rays);
#else
    RENDERERS_NO_CUDA("packed_chunks");
#endif
  }
  return PackedChunksCpu(ray_indices.contiguous(), n_rays);
}

// alpha = -expm1(-sigma * (t_end - t_start)), the same ATen ops (hence bits) as the PyTorch reference.
inline at::Tensor CompositeAlphas(const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends) {
  auto alphas = t_ends.sub(t_starts);  // one buffer, updated in place
  alphas.mul_(sigmas).neg_();
  at::expm1_(alphas);
  return alphas.neg_();
}

inline void CompositeCheckInputs(
    const at::Tensor& sigmas,
    const at::Tensor& values,
    const at::Tensor& t_starts,
    const at::Tensor& t_ends,
    const at::Tensor& chunk_starts,
    const at::Tensor& chunk_cnts) {
  RENDERERS_CHECK_DIM(sigmas, 1);
  RENDERERS_CHECK_DIM(values, 2);
  RENDERERS_CHECK_DIM(t_starts, 1);
  RENDERERS_CHECK_DIM(t_ends, 1);
  RENDERERS_CHECK_DIM(chunk_starts, 1);
  RENDERERS_CHECK_DIM(chunk_cnts, 1);
  const auto n = sigmas.size(0);
  TORCH_CHECK(values.size(0) == n && t_starts.size(0) == n && t_ends.size(0) == n, "composite: N mismatch");
  TORCH_CHECK(chunk_starts.size(0) == chunk_cnts.size(0), "composite: chunk_starts/chunk_cnts mismatch");
  RENDERERS_CHECK_DTYPE(values, sigmas.scalar_type());
  RENDERERS_CHECK_DTYPE(t_starts, sigmas.scalar_type());
  RENDERERS_CHECK_DTYPE(t_ends, sigmas.scalar_type());
  RENDERERS_CHECK_DTYPE(chunk_starts, at::kLong);
  RENDERERS_CHECK_DTYPE(chunk_cnts, at::kLong);
  for (const auto* t : {&values, &t_starts, &t_ends, &chunk_starts, &chunk_cnts}) {
    TORCH_CHECK(t->device() == sigmas.device(), "composite: all inputs must share a device");
  }
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> CompositeForward(
    const at::Tensor& sigmas,
    const at::Tensor& values,
    const at::Tensor& t_starts,
    const at::Tensor& t_ends,
    const at::Tensor& chunk_starts,
    const at::Tensor& chunk_cnts,
    double eps,
    bool save_aux,
    bool cooperative) {
  CompositeCheckInputs(sigmas, values, t_starts, t_ends, chunk_starts, chunk_cnts);
  if (sigmas.is_cuda()) {
#ifdef WITH_CUDA
    return CompositeCuda(
        sigmas.contiguous(), values.contiguous(), t_starts.contiguous(), t_ends.contiguous(),
        chunk_starts.contiguous(), chunk_cnts.contiguous(), eps, save_aux, cooperative);
#else
    RENDERERS_NO_CUDA("composite");
#endif
  }
  return CompositeCpu(
      sigmas.contiguous(), values.contiguous(), t_starts.contiguous(), t_ends.contiguous(), chunk_starts.contiguous(),
      chunk_cnts.contiguous(), eps, save_aux);
}

inline std::tuple<at::Tensor, at::Tensor> CompositeBackward(
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
  const auto n = values.size(0);
  const auto r = chunk_starts.size(0);
  const auto c = values.size(1);
  const auto dtype = values.scalar_type();
  TORCH_CHECK(values.dim() == 2 && t_starts.numel() == n && t_ends.numel() == n, "composite: N mismatch");
  TORCH_CHECK(trans.numel() == n && alphas.numel() == n && live_cnts.numel() == r,
              "composite: the saved tensors do not match the inputs (was save_aux set?)");
  TORCH_CHECK(out_values.dim() == 2 && out_values.size(0) == r && out_values.size(1) == c,
              "composite: out_values must be (R, C)");
  TORCH_CHECK(grad_values.dim() == 2 && grad_values.size(0) == r && grad_values.size(1) == c,
              "composite: grad_values must be (R, C)");
  TORCH_CHECK(grad_opacity.numel() == r && grad_depth.numel() == r, "composite: grad_opacity/grad_depth must be (R,)");
  TORCH_CHECK(chunk_cnts.numel() == r, "composite: chunk_cnts must be (R,)");
  RENDERERS_CHECK_DTYPE(chunk_starts, at::kLong);
  RENDERERS_CHECK_DTYPE(chunk_cnts, at::kLong);
  RENDERERS_CHECK_DTYPE(live_cnts, at::kLong);
  for (const auto* t : {&t_starts, &t_ends, &out_values, &out_opacity, &out_depth, &trans, &alphas}) {
    TORCH_CHECK(t->scalar_type() == dtype, "composite: all floating inputs must share a dtype");
  }
  auto gv = grad_values.to(dtype).contiguous();
  auto go = grad_opacity.to(dtype).reshape({r}).contiguous();
  auto gd = grad_depth.to(dtype).reshape({r}).contiguous();
  if (values.is_cuda()) {
#ifdef WITH_CUDA
    return CompositeBackwardCuda(
        gv, go, gd, values.contiguous(), t_starts.contiguous(), t_ends.contiguous(), chunk_starts.contiguous(),
        chunk_cnts.contiguous(), out_values.contiguous(), out_opacity.contiguous(), out_depth.contiguous(),
        trans.contiguous(), alphas.contiguous(), live_cnts.contiguous(), cooperative);
#else
    RENDERERS_NO_CUDA("composite");
#endif
  }
  return CompositeBackwardCpu(
      gv, go, gd, values.contiguous(), t_starts.contiguous(), t_ends.contiguous(), chunk_starts.contiguous(),
      chunk_cnts.contiguous(), out_values.contiguous(), out_opacity.contiguous(), out_depth.contiguous(),
      trans.contiguous(), alphas.contiguous(), live_cnts.contiguous());
}
