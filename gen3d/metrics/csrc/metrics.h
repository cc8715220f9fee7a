// Native kernels of gen3d.metrics: nearest-neighbour distances (Chamfer) and an auction solver for the
// Earth Mover's Distance. CPU (C++/OpenMP) only; the Python side keeps a PyTorch/SciPy reference of each.
#pragma once

#include <ATen/ATen.h>

#include <vector>

// Squared nearest-neighbour distances between the clouds of two batches.
//
// Args:
//   x: (B, N, 3) float32 or float64, contiguous.
//   y: (B, M, 3) same dtype, contiguous.
//   with_index: also return the index of each nearest neighbour.
//
// Returns:
//   {dist_xy (B, N), dist_yx (B, M)} and, when with_index, {idx_xy (B, N), idx_yx (B, M)} int64.
//   dist_xy[b, i] = min_j |x[b, i] - y[b, j]|^2; ties resolve to the lowest index.
std::vector<at::Tensor> NnDistanceCpu(const at::Tensor& x, const at::Tensor& y, bool with_index);

// Near-optimal bijection between two clouds of equal size by the forward auction algorithm with
// epsilon scaling (Bertsekas), on the Euclidean cost |x_i - y_j|.
//
// Args:
//   x: (B, N, 3) float32 or float64, contiguous.
//   y: (B, N, 3) same dtype, contiguous.
//   rel_eps: final epsilon relative to a lower bound of the mean matching cost; the returned matching's
//     mean cost exceeds the optimum by at most rel_eps times that bound (hence by at most rel_eps
//     relative to the optimum).
//   stop_above: (B,) float64; a pair whose lower bound at the end of a scaling phase exceeds its entry is
//     given up (inf: never).
//
// Returns:
//   {cost (B,) float64: mean Euclidean cost of the matching (NaN for a pair given up),
//    assignment (B, N) int64: x[i] -> y[assignment[i]],
//    lower (B,) float64: a lower bound of the optimal mean cost}.
std::vector<at::Tensor> EmdAuctionCpu(const at::Tensor& x, const at::Tensor& y, double rel_eps,
                                      const at::Tensor& stop_above);
