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

// alpha = -expm1(-sigma * (t_end - t_start)), the same ATen ops (hence bits) as the PyTorch reference.
inline at::Tensor CompositeAlphas(const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends) {
  auto alphas = t_ends.sub(t_starts);  // one buffer, updated in place
  alphas.mul_(sigmas).neg_();
  at::expm1_(alphas);
  return alphas.neg_();
}
