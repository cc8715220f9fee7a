// CPU (OpenMP) kernels of the fused volume compositing; one ray per iteration.
//
// Forward: walk the samples front to back, T_i = prod_{j<i} (1 - alpha_j) accumulated in double (as torch's
// cumprod does), stop at the first sample with T_i < eps. Backward: with v_i = dL/dw_i =
// grad_values . values_i + grad_depth * t_mid_i + grad_opacity, the loss restricted to the live samples is
// sum_i w_i v_i and
//   dL/dtau_i = T_i (1 - alpha_i) v_i - sum_{j > i, live} w_j v_j,   dL/dsigma_i = delta_i dL/dtau_i,
//   dL/dvalues_i = w_i grad_values,
// computed in one walk from the saved T_i, alpha_i and the forward outputs (which hold sum_j w_j v_j).
#include <ATen/AccumulateType.h>

#include <algorithm>
#include <cmath>

#include "composite.h"

namespace {

// kC > 0: the number of channels known at compile time (unrolled loops); kC == 0: n_channels at run time.
template <typename scalar_t, int kC>
void CompositeForwardKernel(
    const scalar_t* alphas,
    const scalar_t* values,
    const scalar_t* t_starts,
    const scalar_t* t_ends,
    const int64_t* chunk_starts,
    const int64_t* chunk_cnts,
    int64_t n_rays,
    int64_t n_channels,
    scalar_t eps,
    scalar_t* out_values,
    scalar_t* out_opacity,
    scalar_t* out_depth,
    scalar_t* out_trans,  // nullptr: not saved
    int64_t* out_live) {  // nullptr: not saved
  using acc_t = at::acc_type<scalar_t, false>;
  const int64_t n_ch = kC > 0 ? kC : n_channels;
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < n_rays; ++r) {
    const int64_t start = chunk_starts[r];
    const int64_t end = start + chunk_cnts[r];
    acc_t trans = 1;  // transmittance before the current sample
    acc_t opacity = 0;
    acc_t depth = 0;
    scalar_t* v_out = out_values + r * n_ch;
    int64_t i = start;
    for (; i < end; ++i) {
      const scalar_t t = static_cast<scalar_t>(trans);
      if (t < eps) break;  // early termination: this and later samples get zero weight
      const scalar_t alpha = alphas[i];
      const scalar_t w = t * alpha;
      const scalar_t* v = values + i * n_ch;
      for (int64_t c = 0; c < n_ch; ++c) v_out[c] += w * v[c];
      opacity += w;
      depth += w * ((t_starts[i] + t_ends[i]) * scalar_t(0.5));
      if (out_trans != nullptr) out_trans[i] = t;
      trans *= static_cast<scalar_t>(scalar_t(1) - alpha);
    }
    if (out_live != nullptr) out_live[r] = i - start;
    out_opacity[r] = static_cast<scalar_t>(opacity);
    out_depth[r] = static_cast<scalar_t>(depth);
  }
}

template <typename scalar_t, int kC>
void CompositeBackwardKernel(
    const scalar_t* grad_values,
    const scalar_t* grad_opacity,
    const scalar_t* grad_depth,
    const scalar_t* values,
    const scalar_t* t_starts,
    const scalar_t* t_ends,
    const int64_t* chunk_starts,
    const int64_t* chunk_cnts,
    const scalar_t* out_values,
    const scalar_t* out_opacity,
    const scalar_t* out_depth,
    const scalar_t* trans,
    const scalar_t* alphas,
    const int64_t* live_cnts,
    int64_t n_rays,
    int64_t n_channels,
    scalar_t* grad_sigmas,
    scalar_t* grad_vals) {
  using acc_t = at::acc_type<scalar_t, false>;
  const int64_t n_ch = kC > 0 ? kC : n_channels;
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < n_rays; ++r) {
    const int64_t start = chunk_starts[r];
    const int64_t end = start + live_cnts[r];
    // Terminated samples (after the live prefix) get zero gradients.
    for (int64_t i = end; i < start + chunk_cnts[r]; ++i) {
      grad_sigmas[i] = 0;
      for (int64_t c = 0; c < n_ch; ++c) grad_vals[i * n_ch + c] = 0;
    }
    const scalar_t* gv = grad_values + r * n_ch;
    const scalar_t go = grad_opacity[r];
    const scalar_t gd = grad_depth[r];
    // remaining = sum over the live samples after the current one of w_j v_j.
    acc_t remaining = static_cast<acc_t>(gd) * out_depth[r] + static_cast<acc_t>(go) * out_opacity[r];
    for (int64_t c = 0; c < n_ch; ++c) remaining += static_cast<acc_t>(gv[c]) * out_values[r * n_ch + c];
    for (int64_t i = start; i < end; ++i) {
      const scalar_t w = trans[i] * alphas[i];  // as in the forward pass
      const scalar_t* v = values + i * n_ch;
      scalar_t* gval = grad_vals + i * n_ch;
      acc_t vi = gd * ((t_starts[i] + t_ends[i]) * scalar_t(0.5)) + go;
      for (int64_t c = 0; c < n_ch; ++c) {
        vi += gv[c] * v[c];
        gval[c] = w * gv[c];
      }
      remaining -= w * vi;
      const acc_t grad_tau = (trans[i] - w) * vi - remaining;  // T_i - w_i = T_i (1 - alpha_i)
      grad_sigmas[i] = static_cast<scalar_t>(grad_tau * (t_ends[i] - t_starts[i]));
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> CompositeCpu(
    const at::Tensor& sigmas,
    const at::Tensor& values,
    const at::Tensor& t_starts,
    const at::Tensor& t_ends,
    const at::Tensor& chunk_starts,
    const at::Tensor& chunk_cnts,
    double eps,
    bool save_aux) {
  RENDERERS_CHECK_CPU(sigmas);
  const int64_t n_rays = chunk_starts.size(0);
  const int64_t n_channels = values.size(1);
  // alpha = -expm1(-sigma * (t_end - t_start)) with ATen's vectorised kernels (the reference's exact ops).
  auto alphas = CompositeAlphas(sigmas, t_starts, t_ends);
  auto out_values = at::zeros({n_rays, n_channels}, sigmas.options());
  auto out_opacity = at::zeros({n_rays}, sigmas.options());
  auto out_depth = at::zeros({n_rays}, sigmas.options());
  auto trans = at::empty({save_aux ? sigmas.size(0) : 0}, sigmas.options());
  auto live = at::zeros({save_aux ? n_rays : 0}, chunk_starts.options());
  if (n_rays > 0) {
    AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "CompositeCpu", [&] {
      RenderersDispatchChannels(n_channels, [&](auto kc) {
        CompositeForwardKernel<scalar_t, decltype(kc)::value>(
            alphas.data_ptr<scalar_t>(), values.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(),
            t_ends.data_ptr<scalar_t>(), chunk_starts.data_ptr<int64_t>(), chunk_cnts.data_ptr<int64_t>(), n_rays,
            n_channels, static_cast<scalar_t>(eps), out_values.data_ptr<scalar_t>(),
            out_opacity.data_ptr<scalar_t>(), out_depth.data_ptr<scalar_t>(),
            save_aux ? trans.data_ptr<scalar_t>() : nullptr, save_aux ? live.data_ptr<int64_t>() : nullptr);
      });
    });
  }
  if (!save_aux) alphas = at::empty({0}, sigmas.options());
  return std::make_tuple(out_values, out_opacity, out_depth, trans, alphas, live);
}

std::tuple<at::Tensor, at::Tensor> CompositeBackwardCpu(
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
    const at::Tensor& live_cnts) {
  RENDERERS_CHECK_CPU(values);
  const int64_t n_rays = chunk_starts.size(0);
  const int64_t n_channels = values.size(1);
  // Every sample belongs to one chunk, whose kernel writes its gradient (zero after early termination).
  auto grad_sigmas = at::empty({values.size(0)}, values.options());
  auto grad_vals = at::empty_like(values);
  if (n_rays == 0 || values.size(0) == 0) return std::make_tuple(grad_sigmas, grad_vals);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "CompositeBackwardCpu", [&] {
    RenderersDispatchChannels(n_channels, [&](auto kc) {
      CompositeBackwardKernel<scalar_t, decltype(kc)::value>(
          grad_values.data_ptr<scalar_t>(), grad_opacity.data_ptr<scalar_t>(), grad_depth.data_ptr<scalar_t>(),
          values.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>(),
          chunk_starts.data_ptr<int64_t>(), chunk_cnts.data_ptr<int64_t>(), out_values.data_ptr<scalar_t>(),
          out_opacity.data_ptr<scalar_t>(), out_depth.data_ptr<scalar_t>(), trans.data_ptr<scalar_t>(),
          alphas.data_ptr<scalar_t>(),
          live_cnts.data_ptr<int64_t>(), n_rays, n_channels, grad_sigmas.data_ptr<scalar_t>(),
          grad_vals.data_ptr<scalar_t>());
    });
  });
  return std::make_tuple(grad_sigmas, grad_vals);
}

std::tuple<at::Tensor, at::Tensor> PackedChunksCpu(const at::Tensor& ray_indices, int64_t n_rays) {
  RENDERERS_CHECK_CPU(ray_indices);
  const int64_t n = ray_indices.numel();
  auto bounds = at::empty({n_rays + 1}, ray_indices.options());  // bounds[r] = first sample of ray r
  const int64_t* ri = ray_indices.data_ptr<int64_t>();
  int64_t* first = bounds.data_ptr<int64_t>();
  int bad = 0;
#pragma omp parallel for reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t cur = ri[i];
    const int64_t prev = i == 0 ? -1 : ri[i - 1];
    if (cur < prev || cur < 0 || cur >= n_rays) {
      bad = 1;
      continue;
    }
    for (int64_t r = std::max<int64_t>(prev + 1, 0); r <= cur; ++r) first[r] = i;  // rays (prev, cur] start at i
  }
  TORCH_CHECK_VALUE(!bad, "ray_indices must be sorted and lie in [0, n_rays=", std::to_string(n_rays), ")");
  for (int64_t r = n > 0 ? ri[n - 1] + 1 : 0; r <= n_rays; ++r) first[r] = n;  // rays after the last sample
  auto starts = bounds.narrow(0, 0, n_rays);
  auto cnts = bounds.narrow(0, 1, n_rays).sub(starts);
  return std::make_tuple(starts.contiguous(), cnts);
}
