// CUDA twin of raymarch_cpu.cpp: one thread per ray, count kernel then fill kernel at prefix-sum offsets.
//
// Every rounding-sensitive operation uses an explicitly rounded intrinsic (no FMA contraction, no fast-math
// division) so that the sample sets equal the CPU kernel's and raymarch_ref's bit for bit.
#include <ATen/ops/cumsum.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cuda/std/limits>

#include "raymarch.h"

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMinJump = 3;  // runs of empty intervals at most this long are stepped through
constexpr int kBlockShift = 3;   // empty-space skipping also works on blocks of 8^3 cells

__device__ __forceinline__ float Add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double Add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float Sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double Sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float Mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double Mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float Div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double Div(double a, double b) { return __ddiv_rn(a, b); }

struct GridInfo {
  int64_t res[3];
  int64_t n_bytes;
  int64_t blocks[3];  // blocks of 2^kBlockShift cells per axis
  int64_t n_blocks;
};

template <typename scalar_t>
struct Ray {
  scalar_t o[3];
  scalar_t d[3];
  scalar_t lo[3];
  scalar_t scale[3];  // cells per unit length
  scalar_t res_f[3];
  int64_t res[3];
  double cell_size[3];
  double inv_d[3];
  double inv_step;
  scalar_t t_min;
  scalar_t t_max;
  scalar_t step;
  int64_t k_end;

  // Interval k and the cell of its midpoint; false when interval k does not exist.
  __device__ bool Interval(int64_t k, scalar_t& t0, scalar_t& t1, int64_t* cell) const {
    if (k >= k_end) return false;
    t0 = Add(t_min, Mul(static_cast<scalar_t>(k), step));
    if (!(t0 < t_max)) return false;
    const scalar_t t0_step = Add(t0, step);
    t1 = t0_step < t_max ? t0_step : t_max;
    const scalar_t mid = Mul(Add(t0, t1), scalar_t(0.5));
    for (int a = 0; a < 3; ++a) {
      const scalar_t u = Mul(Sub(Add(o[a], Mul(mid, d[a])), lo[a]), scale[a]);
      cell[a] = u < scalar_t(0) ? 0 : (u >= res_f[a] ? res[a] - 1 : static_cast<int64_t>(u));
    }
    return true;
  }

  __device__ bool Same(int64_t k, const int64_t* cell, int shift) const {
    scalar_t s0, s1;
    int64_t c[3];
    return Interval(k, s0, s1, c) && (c[0] >> shift) == (cell[0] >> shift) && (c[1] >> shift) == (cell[1] >> shift) &&
           (c[2] >> shift) == (cell[2] >> shift);
  }

  // First k whose midpoint may lie beyond the cell/block (cell >> shift): a guess from the DDA exit.
  __device__ double ExitGuess(const int64_t* cell, int shift) const {
    double t_exit = cuda::std::numeric_limits<double>::infinity();
    for (int a = 0; a < 3; ++a) {
      if (d[a] == 0) continue;
      const int64_t face = ((cell[a] >> shift) + (d[a] > 0 ? 1 : 0)) << shift;
      const double t_face = (static_cast<double>(lo[a]) + face * cell_size[a] - o[a]) * inv_d[a];
      t_exit = t_face < t_exit ? t_face : t_exit;
    }
    return ceil((t_exit - t_min) * inv_step - 0.5);
  }

  // First k after k0 whose midpoint is outside the cell/block of k0 (exact: galloping + bisection).
  __device__ int64_t RunEnd(int64_t k0, const int64_t* cell, int shift, double guess) const {
    int64_t lo_k = k0;
    int64_t hi_k = static_cast<int64_t>(guess < static_cast<double>(k_end) ? guess : static_cast<double>(k_end));
    if (Same(hi_k, cell, shift)) {
      int64_t stride = 1;
      do {
        lo_k = hi_k;
        hi_k = lo_k + stride < k_end ? lo_k + stride : k_end;
        stride *= 2;
      } while (Same(hi_k, cell, shift));
    } else if (Same(hi_k - 1, cell, shift)) {
      lo_k = hi_k - 1;
    }
    while (hi_k - lo_k > 1) {
      const int64_t m = lo_k + (hi_k - lo_k) / 2;
      if (Same(m, cell, shift)) {
        lo_k = m;
      } else {
        hi_k = m;
      }
    }
    return hi_k;
  }
};

// Marches one ray from step k_start (see raymarch_cpu.cpp for the step grid and the exact empty-space
// skipping); writes the kept intervals when out_t_starts is not null, at most max_samples (<= 0: no cap).
// Returns the number kept and the step of the first kept interval.
template <typename scalar_t>
__device__ int64_t MarchRay(
    const scalar_t* o,
    const scalar_t* d,
    const scalar_t* aabb,
    const uint8_t* bits,
    const uint8_t* coarse,
    const GridInfo& grid,
    scalar_t near,
    scalar_t far,
    scalar_t step,
    int64_t max_samples,
    int64_t k_start,
    int64_t* k_first,
    int64_t ray_id,
    int64_t* out_ray_indices,
    scalar_t* out_t_starts,
    scalar_t* out_t_ends) {
  const scalar_t inf = cuda::std::numeric_limits<scalar_t>::infinity();
  scalar_t t_enter = -inf;
  scalar_t t_exit = inf;
  for (int a = 0; a < 3; ++a) {
    scalar_t lo_t, hi_t;
    if (d[a] == 0) {
      const bool inside = aabb[a] <= o[a] && o[a] <= aabb[a + 3];
      lo_t = inside ? -inf : inf;
      hi_t = inside ? inf : -inf;
    } else {
      const scalar_t t1 = Div(Sub(aabb[a], o[a]), d[a]);
      const scalar_t t2 = Div(Sub(aabb[a + 3], o[a]), d[a]);
      lo_t = t1 < t2 ? t1 : t2;
      hi_t = t1 < t2 ? t2 : t1;
    }
    t_enter = lo_t > t_enter ? lo_t : t_enter;
    t_exit = hi_t < t_exit ? hi_t : t_exit;
  }
  Ray<scalar_t> ray;
  ray.step = step;
  ray.t_min = near > t_enter ? near : t_enter;
  ray.t_max = far < t_exit ? far : t_exit;
  if (!(ray.t_min < ray.t_max) || !isfinite(ray.t_max)) return 0;
  for (int a = 0; a < 3; ++a) {
    ray.o[a] = o[a];
    ray.d[a] = d[a];
    ray.lo[a] = aabb[a];
    ray.res[a] = grid.res[a];
    ray.res_f[a] = static_cast<scalar_t>(grid.res[a]);
    ray.scale[a] = Div(ray.res_f[a], Sub(aabb[a + 3], aabb[a]));
    ray.cell_size[a] = 1.0 / static_cast<double>(ray.scale[a]);
    ray.inv_d[a] = d[a] == 0 ? 0.0 : 1.0 / static_cast<double>(d[a]);
  }
  ray.inv_step = 1.0 / static_cast<double>(step);
  const double k_end_d = ceil((static_cast<double>(ray.t_max) - ray.t_min) / step) + 2.0;
  ray.k_end = static_cast<int64_t>(k_end_d < 9.0e15 ? k_end_d : 9.0e15);
  if (k_first != nullptr) *k_first = ray.k_end;

  int64_t count = 0;
  int64_t k = k_start;
  int64_t stepping_cell = -1;  // empty cell whose short run is being stepped through
  scalar_t t0, t1;
  int64_t cell[3];
  while (ray.Interval(k, t0, t1, cell)) {
    const int64_t l = (cell[0] * grid.res[1] + cell[1]) * grid.res[2] + cell[2];
    if ((bits[l >> 3] >> (l & 7)) & 1) {
      if (count == 0 && k_first != nullptr) *k_first = k;
      if (out_t_starts != nullptr) {
        out_ray_indices[count] = ray_id;
        out_t_starts[count] = t0;
        out_t_ends[count] = t1;
      }
      ++count;
      if (count == max_samples) break;
      ++k;
      continue;
    }
    if (l == stepping_cell) {
      ++k;
      continue;
    }
    const int64_t block = ((cell[0] >> kBlockShift) * grid.blocks[1] + (cell[1] >> kBlockShift)) * grid.blocks[2] +
                          (cell[2] >> kBlockShift);
    if (!coarse[block]) {
      const double guess = ray.ExitGuess(cell, kBlockShift);
      if (guess > static_cast<double>(k + kMinJump)) {
        k = ray.RunEnd(k, cell, kBlockShift, guess);
        continue;
      }
    }
    const double guess = ray.ExitGuess(cell, 0);
    if (!(guess > static_cast<double>(k + kMinJump))) {
      stepping_cell = l;
      ++k;
      continue;
    }
    k = ray.RunEnd(k, cell, 0, guess);
  }
  return count;
}

__global__ void CoarseOccupancyCudaKernel(
    const uint8_t* __restrict__ bits,
    int64_t n_scenes,
    GridInfo grid,
    uint8_t* __restrict__ coarse) {
  const int64_t q_all = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q_all >= n_scenes * grid.n_bytes) return;
  const int64_t s = q_all / grid.n_bytes;
  const int64_t q = q_all % grid.n_bytes;
  const uint8_t v = bits[q_all];
  if (v == 0) return;
  const int64_t ry = grid.res[1], rz = grid.res[2];
  const int64_t n_cells = grid.res[0] * ry * rz;
  int64_t l = q * 8;
  int64_t i = l / (ry * rz), j = (l / rz) % ry, kz = l % rz;
  for (int b = 0; b < 8 && l < n_cells; ++b, ++l) {
    if ((v >> b) & 1) {  // concurrent writers all store 1
      coarse[s * grid.n_blocks + ((i >> kBlockShift) * grid.blocks[1] + (j >> kBlockShift)) * grid.blocks[2] +
             (kz >> kBlockShift)] = 1;
    }
    if (++kz == rz) {
      kz = 0;
      if (++j == ry) {
        j = 0;
        ++i;
      }
    }
  }
}

template <typename scalar_t>
__global__ void RayMarchCudaKernel(
    const scalar_t* __restrict__ origins,
    const scalar_t* __restrict__ dirs,
    const int64_t* __restrict__ ray_scene,
    const uint8_t* __restrict__ bits,
    const uint8_t* __restrict__ coarse,
    const scalar_t* __restrict__ aabbs,
    const scalar_t* __restrict__ near,
    const scalar_t* __restrict__ far,
    GridInfo grid,
    scalar_t step,
    int64_t max_samples,
    int64_t n_rays,
    const int64_t* __restrict__ offsets,  // nullptr: count pass
    int64_t* __restrict__ counts,
    int64_t* __restrict__ k_first,
    int64_t* __restrict__ out_ray_indices,
    scalar_t* __restrict__ out_t_starts,
    scalar_t* __restrict__ out_t_ends) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n_rays) return;
  const int64_t s = ray_scene[r];
  const uint8_t* scene_bits = bits + s * grid.n_bytes;
  const uint8_t* scene_coarse = coarse + s * grid.n_blocks;
  if (offsets == nullptr) {
    counts[r] = MarchRay<scalar_t>(origins + 3 * r, dirs + 3 * r, aabbs + 6 * s, scene_bits, scene_coarse, grid,
                                   near[r], far[r], step, max_samples, 0, k_first + r, r, nullptr, nullptr, nullptr);
  } else if (counts[r] > 0) {
    // Resume at the first kept interval and stop after the counted ones.
    const int64_t base = offsets[r];
    MarchRay<scalar_t>(origins + 3 * r, dirs + 3 * r, aabbs + 6 * s, scene_bits, scene_coarse, grid, near[r],
                       far[r], step, counts[r], k_first[r], nullptr, r, out_ray_indices + base, out_t_starts + base,
                       out_t_ends + base);
  }
}

inline int NumBlocks(int64_t n) {
  return static_cast<int>((n + kThreads - 1) / kThreads);
}

}  // namespace

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
    int64_t max_samples) {
  RENDERERS_CHECK_CUDA(origins);
  c10::cuda::CUDAGuard device_guard(origins.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t n_rays = origins.size(0);
  const int64_t n_scenes = bits.size(0);
  GridInfo grid{{res_x, res_y, res_z}, bits.size(1), {0, 0, 0}, 1};
  for (int a = 0; a < 3; ++a) {
    grid.blocks[a] = (grid.res[a] + (1 << kBlockShift) - 1) >> kBlockShift;
    grid.n_blocks *= grid.blocks[a];
  }
  auto coarse = at::zeros({n_scenes, grid.n_blocks}, bits.options());
  if (n_scenes * grid.n_bytes > 0) {
    CoarseOccupancyCudaKernel<<<NumBlocks(n_scenes * grid.n_bytes), kThreads, 0, stream>>>(
        bits.data_ptr<uint8_t>(), n_scenes, grid, coarse.data_ptr<uint8_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  auto counts = at::zeros({n_rays}, ray_scene.options());
  auto k_first = at::zeros({n_rays}, ray_scene.options());
  at::Tensor ray_indices, t_starts, t_ends;
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "RayMarchCuda", [&] {
    const scalar_t step_s = static_cast<scalar_t>(step);
    if (n_rays > 0) {
      RayMarchCudaKernel<scalar_t><<<NumBlocks(n_rays), kThreads, 0, stream>>>(
          origins.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), ray_scene.data_ptr<int64_t>(),
          bits.data_ptr<uint8_t>(), coarse.data_ptr<uint8_t>(), aabbs.data_ptr<scalar_t>(),
          near.data_ptr<scalar_t>(), far.data_ptr<scalar_t>(), grid, step_s, max_samples, n_rays, nullptr,
          counts.data_ptr<int64_t>(), k_first.data_ptr<int64_t>(), nullptr, nullptr, nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    const auto inclusive = at::cumsum(counts, 0);
    const int64_t total = n_rays > 0 ? inclusive[n_rays - 1].item<int64_t>() : 0;
    const auto offsets = inclusive.sub(counts).contiguous();
    ray_indices = at::empty({total}, ray_scene.options());
    t_starts = at::empty({total}, origins.options());
    t_ends = at::empty({total}, origins.options());
    if (total > 0) {
      RayMarchCudaKernel<scalar_t><<<NumBlocks(n_rays), kThreads, 0, stream>>>(
          origins.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), ray_scene.data_ptr<int64_t>(),
          bits.data_ptr<uint8_t>(), coarse.data_ptr<uint8_t>(), aabbs.data_ptr<scalar_t>(),
          near.data_ptr<scalar_t>(), far.data_ptr<scalar_t>(), grid, step_s, max_samples, n_rays,
          offsets.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), k_first.data_ptr<int64_t>(),
          ray_indices.data_ptr<int64_t>(), t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return std::make_tuple(ray_indices, t_starts, t_ends);
}
