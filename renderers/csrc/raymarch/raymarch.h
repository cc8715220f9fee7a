// Ray marching through B occupancy grids at once, with empty-space skipping.
//
// Ray r belongs to scene ray_scene[r]; each scene has an AABB (xmin, ymin, zmin, xmax, ymax, zmax) and an
// occupancy bitfield over a (X, Y, Z) grid of cells (cell (i, j, k) is bit l & 7 of byte l >> 3 with
// l = (i * Y + j) * Z + k). Step grid: with [t_min, t_max] = [max(t_enter, near), min(t_exit, far)],
// t_k = t_min + k * step, interval k = [t_k, min(t_k + step, t_max)] for all t_k < t_max; the interval is
// kept when the cell holding its midpoint is occupied, up to max_samples intervals per ray (<= 0: no cap).
// Rays whose interval is empty or unbounded produce no samples. The traversal jumps over empty cells and
// empty blocks of 8^3 cells (DDA to the exit, confirmed exactly) but keeps exactly the intervals of a uniform
// march.
//
// Two passes (count, then fill at prefix-sum offsets) make the output deterministic and sorted by ray.
#pragma once
#include <tuple>

#include "../utils.h"

// Returns (ray_indices (N,) int64, t_starts (N,), t_ends (N,)).
std::tuple<at::Tensor, at::Tensor, at::Tensor> RayMarchCpu(
    const at::Tensor& origins,    // (R, 3)
    const at::Tensor& dirs,       // (R, 3)
    const at::Tensor& ray_scene,  // (R,) int64 in [0, B)
    const at::Tensor& bits,       // (B, n_bytes) uint8
    const at::Tensor& aabbs,      // (B, 6)
    const at::Tensor& near,       // (R,)
    const at::Tensor& far,        // (R,)
    int64_t res_x,
    int64_t res_y,
    int64_t res_z,
    double step,
    int64_t max_samples);

#ifdef WITH_CUDA
std::tuple<at::Tensor, at::Tensor, at::Tensor> RayMarchCuda(
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
    int64_t max_samples);
#endif
