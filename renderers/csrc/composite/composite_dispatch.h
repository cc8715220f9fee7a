// The compositing entry points bound by ext.cpp: argument checks, then the CPU kernels or, on CUDA tensors, their
// CUDA twins. Included by ext.cpp only; the kernels see composite.h alone.
#pragma once
#include "composite.h"

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
