// Squared nearest-neighbour distances between point clouds (the core of the Chamfer distance).
//
// Both directions come out of one sweep: every squared distance d(i, j) updates the running minimum of
// row i (x -> y) and of column j (y -> x). The y cloud is cut into tiles that stay in L1 together with
// their column minima, and each x point is streamed past a tile; coordinates are laid out as
// structure-of-arrays so the inner loop over a tile vectorises. OpenMP spreads (batch item, x chunk)
// pairs over threads; when the batch is smaller than the thread count, each item's x points are split
// into chunks whose partial column minima are merged at the end (in chunk order, so ties still go to
// the lowest index).
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "metrics.h"
#include "simd.h"

namespace gen3d_metrics {
namespace {

constexpr int64_t kTileBytes = 16 * 1024;  // y tile: 3 coordinates + column minimum per point
constexpr int64_t kMinChunk = 256;          // fewest x points per work item

// Rows [i0, i1) of x against the y tile [j0, j1): updates row_min[i] and col_min[j].
template <typename T>
GEN3D_INLINE void SweepTile(const T* __restrict x0, const T* __restrict x1, const T* __restrict x2, int64_t i0,
                            int64_t i1, const T* __restrict y0, const T* __restrict y1, const T* __restrict y2,
                            int64_t j0, int64_t j1, T* __restrict row_min, T* __restrict col_min) {
  for (int64_t i = i0; i < i1; ++i) {
    const T a0 = x0[i], a1 = x1[i], a2 = x2[i];
    T best = row_min[i];
#pragma omp simd reduction(min : best)
    for (int64_t j = j0; j < j1; ++j) {
      const T d0 = a0 - y0[j], d1 = a1 - y1[j], d2 = a2 - y2[j];
      const T d = d0 * d0 + d1 * d1 + d2 * d2;
      best = d < best ? d : best;
      col_min[j] = d < col_min[j] ? d : col_min[j];
    }
    row_min[i] = best;
  }
}

// As SweepTile, also tracking the index of each minimum (first index on ties).
template <typename T>
GEN3D_INLINE void SweepTileIndexed(const T* __restrict x0, const T* __restrict x1, const T* __restrict x2, int64_t i0,
                                   int64_t i1, const T* __restrict y0, const T* __restrict y1,
                                   const T* __restrict y2, int64_t j0, int64_t j1, T* __restrict row_min,
                                   int64_t* __restrict row_idx, T* __restrict col_min, int32_t* __restrict col_idx) {
  for (int64_t i = i0; i < i1; ++i) {
    const T a0 = x0[i], a1 = x1[i], a2 = x2[i];
    const int32_t ii = static_cast<int32_t>(i);
    T tile_best = Inf<T>();
#pragma omp simd reduction(min : tile_best)
    for (int64_t j = j0; j < j1; ++j) {
      const T d0 = a0 - y0[j], d1 = a1 - y1[j], d2 = a2 - y2[j];
      const T d = d0 * d0 + d1 * d1 + d2 * d2;
      tile_best = d < tile_best ? d : tile_best;
      const bool closer = d < col_min[j];
      col_min[j] = closer ? d : col_min[j];
      col_idx[j] = closer ? ii : col_idx[j];
    }
    if (tile_best < row_min[i]) {  // the tile holds a new row minimum: find where (rare after a few tiles)
      T best = row_min[i];
      int64_t arg = row_idx[i];
      for (int64_t j = j0; j < j1; ++j) {
        const T d0 = a0 - y0[j], d1 = a1 - y1[j], d2 = a2 - y2[j];
        const T d = d0 * d0 + d1 * d1 + d2 * d2;
        if (d < best) {
          best = d;
          arg = j;
        }
      }
      row_min[i] = best;
      row_idx[i] = arg;
    }
  }
}

// One work item: x points [i0, i1) of one batch item against all M points of y.
template <typename T>
GEN3D_INLINE void SweepChunk(const T* xs, int64_t n, const T* ys, int64_t m, int64_t i0, int64_t i1, T* row_min,
                             int64_t* row_idx, T* col_min, int32_t* col_idx) {
  const int64_t tile = std::max<int64_t>(64, kTileBytes / static_cast<int64_t>(4 * sizeof(T)));
  const T *x0 = xs, *x1 = xs + n, *x2 = xs + 2 * n;
  const T *y0 = ys, *y1 = ys + m, *y2 = ys + 2 * m;
  for (int64_t j0 = 0; j0 < m; j0 += tile) {
    const int64_t j1 = std::min(m, j0 + tile);
    if (row_idx != nullptr) {
      SweepTileIndexed(x0, x1, x2, i0, i1, y0, y1, y2, j0, j1, row_min, row_idx, col_min, col_idx);
    } else {
      SweepTile(x0, x1, x2, i0, i1, y0, y1, y2, j0, j1, row_min, col_min);
    }
  }
}

GEN3D_MULTIVERSION void SweepChunkF(const float* xs, int64_t n, const float* ys, int64_t m, int64_t i0, int64_t i1,
                                    float* row_min, int64_t* row_idx, float* col_min, int32_t* col_idx) {
  SweepChunk<float>(xs, n, ys, m, i0, i1, row_min, row_idx, col_min, col_idx);
}

GEN3D_MULTIVERSION void SweepChunkD(const double* xs, int64_t n, const double* ys, int64_t m, int64_t i0, int64_t i1,
                                    double* row_min, int64_t* row_idx, double* col_min, int32_t* col_idx) {
  SweepChunk<double>(xs, n, ys, m, i0, i1, row_min, row_idx, col_min, col_idx);
}

inline void Sweep(const float* xs, int64_t n, const float* ys, int64_t m, int64_t i0, int64_t i1, float* row_min,
                  int64_t* row_idx, float* col_min, int32_t* col_idx) {
  SweepChunkF(xs, n, ys, m, i0, i1, row_min, row_idx, col_min, col_idx);
}

inline void Sweep(const double* xs, int64_t n, const double* ys, int64_t m, int64_t i0, int64_t i1, double* row_min,
                  int64_t* row_idx, double* col_min, int32_t* col_idx) {
  SweepChunkD(xs, n, ys, m, i0, i1, row_min, row_idx, col_min, col_idx);
}

template <typename T>
void NnDistanceImpl(const at::Tensor& xs, const at::Tensor& ys, at::Tensor& dist_xy, at::Tensor& dist_yx,
                    at::Tensor* idx_xy, at::Tensor* idx_yx) {
  const int64_t batch = xs.size(0), n = xs.size(2), m = ys.size(2);
  const int64_t threads = std::max(1, omp_get_max_threads());
  int64_t chunks = batch >= threads ? 1 : (threads + batch - 1) / batch;
  chunks = std::max<int64_t>(1, std::min(chunks, (n + kMinChunk - 1) / kMinChunk));
  const int64_t chunk_len = (n + chunks - 1) / chunks;

  const T* x = xs.data_ptr<T>();
  const T* y = ys.data_ptr<T>();
  T* row_min = dist_xy.data_ptr<T>();
  int64_t* row_idx = idx_xy != nullptr ? idx_xy->data_ptr<int64_t>() : nullptr;
  std::fill(row_min, row_min + batch * n, Inf<T>());
  if (row_idx != nullptr) std::fill(row_idx, row_idx + batch * n, int64_t{0});

  T* col_min = dist_yx.data_ptr<T>();
  int64_t* col_idx = idx_yx != nullptr ? idx_yx->data_ptr<int64_t>() : nullptr;
  // Partial column minima, one row per (batch item, chunk); with one chunk per item, the output itself.
  std::vector<T> col_part(chunks > 1 ? static_cast<size_t>(batch * chunks * m) : 0, Inf<T>());
  std::vector<int32_t> col_part_idx(chunks > 1 && col_idx != nullptr ? static_cast<size_t>(batch * chunks * m) : 0, 0);
  std::vector<int32_t> col_idx32(chunks == 1 && col_idx != nullptr ? static_cast<size_t>(batch * m) : 0, 0);
  T* part = chunks > 1 ? col_part.data() : col_min;
  int32_t* part_idx = col_idx == nullptr ? nullptr : (chunks > 1 ? col_part_idx.data() : col_idx32.data());
  if (chunks == 1) std::fill(col_min, col_min + batch * m, Inf<T>());

#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t item = 0; item < batch * chunks; ++item) {
    const int64_t b = item / chunks, c = item % chunks;
    const int64_t i0 = c * chunk_len, i1 = std::min(n, i0 + chunk_len);
    if (i0 >= i1) continue;
    Sweep(x + b * 3 * n, n, y + b * 3 * m, m, i0, i1, row_min + b * n, row_idx != nullptr ? row_idx + b * n : nullptr,
          part + item * m, part_idx != nullptr ? part_idx + item * m : nullptr);
  }

  if (chunks == 1) {
    if (col_idx != nullptr) std::copy(col_idx32.begin(), col_idx32.end(), col_idx);
    return;
  }
  // Merge the chunks' column minima in chunk order (strict < keeps the lowest index on ties).
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < m; ++j) {
      T best = Inf<T>();
      int64_t arg = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t k = (b * chunks + c) * m + j;
        if (col_part[k] < best) {
          best = col_part[k];
          if (col_idx != nullptr) arg = col_part_idx[k];
        }
      }
      col_min[b * m + j] = best;
      if (col_idx != nullptr) col_idx[b * m + j] = arg;
    }
  }
}

}  // namespace
}  // namespace gen3d_metrics

std::vector<at::Tensor> NnDistanceCpu(const at::Tensor& x, const at::Tensor& y, bool with_index) {
  TORCH_CHECK(x.device().is_cpu() && y.device().is_cpu(), "nn_distance: expected CPU tensors");
  TORCH_CHECK(x.dim() == 3 && x.size(2) == 3, "nn_distance: x must have shape (B, N, 3)");
  TORCH_CHECK(y.dim() == 3 && y.size(2) == 3, "nn_distance: y must have shape (B, M, 3)");
  TORCH_CHECK(x.size(0) == y.size(0), "nn_distance: x and y must have the same batch size");
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "nn_distance: x and y must have the same dtype");
  TORCH_CHECK(x.size(1) > 0 && y.size(1) > 0, "nn_distance: clouds must not be empty");
  TORCH_CHECK(x.size(1) < (int64_t{1} << 31), "nn_distance: at most 2^31 - 1 points per cloud");
  const auto xs = x.transpose(1, 2).contiguous();  // (B, 3, N) structure of arrays
  const auto ys = y.transpose(1, 2).contiguous();  // (B, 3, M)
  const int64_t batch = x.size(0), n = x.size(1), m = y.size(1);
  auto dist_xy = at::empty({batch, n}, x.options());
  auto dist_yx = at::empty({batch, m}, x.options());
  at::Tensor idx_xy, idx_yx;
  if (with_index) {
    idx_xy = at::empty({batch, n}, x.options().dtype(at::kLong));
    idx_yx = at::empty({batch, m}, x.options().dtype(at::kLong));
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "NnDistanceCpu", [&] {
    gen3d_metrics::NnDistanceImpl<scalar_t>(xs, ys, dist_xy, dist_yx, with_index ? &idx_xy : nullptr,
                                            with_index ? &idx_yx : nullptr);
  });
  if (with_index) return {dist_xy, dist_yx, idx_xy, idx_yx};
  return {dist_xy, dist_yx};
}
