// The ray marching entry points bound by ext.cpp: argument checks, then the CPU kernels or, on CUDA tensors, their
// CUDA twins. Included by ext.cpp only; the kernels see raymarch.h alone.
#pragma once
#include "raymarch.h"

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> RayMarchForward(
    const at::Tensor& origins,
    const at::Tensor& dirs,
    const at::Tensor& ray_scene,
    const at::Tensor& bits,
    const at::Tensor& aabbs,
    const at::Tensor& near,
    const at::Tensor& far,
    int64_t res_x,
    int64_t res_y,
    int64_t res_z,
    double step,
    int64_t max_samples) {
  TORCH_CHECK(origins.dim() == 2 && origins.size(1) == 3, "raymarch: origins must be (R, 3)");
  TORCH_CHECK(dirs.sizes() == origins.sizes(), "raymarch: dirs must be (R, 3)");
  const auto n_rays = origins.size(0);
  TORCH_CHECK(ray_scene.dim() == 1 && ray_scene.size(0) == n_rays, "raymarch: ray_scene must be (R,)");
  TORCH_CHECK(near.dim() == 1 && near.size(0) == n_rays, "raymarch: near must be (R,)");
  TORCH_CHECK(far.dim() == 1 && far.size(0) == n_rays, "raymarch: far must be (R,)");
  RENDERERS_CHECK_DIM(bits, 2);
  TORCH_CHECK(aabbs.dim() == 2 && aabbs.size(1) == 6 && aabbs.size(0) == bits.size(0),
              "raymarch: aabbs must be (B, 6)");
  TORCH_CHECK(res_x > 0 && res_y > 0 && res_z > 0, "raymarch: resolution must be positive");
  TORCH_CHECK(bits.size(1) * 8 >= res_x * res_y * res_z, "raymarch: bitfield too small for the resolution");
  TORCH_CHECK(step > 0, "raymarch: step must be positive");
  RENDERERS_CHECK_DTYPE(ray_scene, at::kLong);
  RENDERERS_CHECK_DTYPE(bits, at::kByte);
  const auto dtype = origins.scalar_type();
  RENDERERS_CHECK_DTYPE(dirs, dtype);
  RENDERERS_CHECK_DTYPE(aabbs, dtype);
  RENDERERS_CHECK_DTYPE(near, dtype);
  RENDERERS_CHECK_DTYPE(far, dtype);
  for (const auto* t : {&dirs, &ray_scene, &bits, &aabbs, &near, &far}) {
    TORCH_CHECK(t->device() == origins.device(), "raymarch: all inputs must share a device");
  }
  if (origins.is_cuda()) {
#ifdef WITH_CUDA
    return RayMarchCuda(
        origins.contiguous(), dirs.contiguous(), ray_scene.contiguous(), bits.contiguous(), aabbs.contiguous(),
        near.contiguous(), far.contiguous(), res_x, res_y, res_z, step, max_samples);
#else
    RENDERERS_NO_CUDA("raymarch");
#endif
  }
  return RayMarchCpu(
      origins.contiguous(), dirs.contiguous(), ray_scene.contiguous(), bits.contiguous(), aabbs.contiguous(),
      near.contiguous(), far.contiguous(), res_x, res_y, res_z, step, max_samples);
}
