// CPU (OpenMP) ray marching: one ray per iteration, count pass then fill pass.
//
// The arithmetic deciding which intervals are kept mirrors raymarch_ref in renderers/ops/raymarch.py operation
// by operation, so both produce bit-identical sample sets; floating-point contraction (FMA) is disabled to keep
// it that way.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <ATen/ops/cumsum.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "raymarch.h"

namespace {

// Runs of empty intervals at most this long are stepped through rather than jumped over.
constexpr int64_t kMinJump = 3;

// Empty-space skipping also works on blocks of 2^kBlockShift cells per axis.
constexpr int kBlockShift = 3;

struct GridInfo {
  int64_t res[3];
  int64_t n_bytes;
  int64_t blocks[3];  // blocks per axis
  int64_t n_blocks;
};

// Marks the blocks (of 2^kBlockShift cells per axis) of every scene that contain an occupied cell.
void CoarseOccupancy(const uint8_t* bits, int64_t n_scenes, const GridInfo& grid, uint8_t* coarse) {
  const int64_t rx = grid.res[0], ry = grid.res[1], rz = grid.res[2];
  const int64_t slab_blocks = grid.blocks[0];
  // One task per (scene, slab of 2^kBlockShift x-slices): each writes only its own blocks.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < n_scenes * slab_blocks; ++task) {
    const int64_t s = task / slab_blocks;
    const int64_t bx = task % slab_blocks;
    const uint8_t* scene_bits = bits + s * grid.n_bytes;
    uint8_t* scene_coarse = coarse + s * grid.n_blocks;
    const int64_t l_begin = (bx << kBlockShift) * ry * rz;
    const int64_t l_end = std::min((bx + 1) << kBlockShift, rx) * ry * rz;
    for (int64_t q = l_begin >> 3; q < (l_end + 7) >> 3; ++q) {
      const uint8_t v = scene_bits[q];
      if (v == 0) continue;
      int64_t l = q * 8;
      int64_t i = l / (ry * rz), j = (l / rz) % ry, kz = l % rz;
      for (int b = 0; b < 8; ++b, ++l) {
        if (((v >> b) & 1) && l >= l_begin && l < l_end) {
          scene_coarse[((i >> kBlockShift) * grid.blocks[1] + (j >> kBlockShift)) * grid.blocks[2] +
                       (kz >> kBlockShift)] = 1;
        }
        if (++kz == rz) {  // next cell in (i, j, k) order
          kz = 0;
          if (++j == ry) {
            j = 0;
            ++i;
          }
        }
      }
    }
  }
}

struct MarchResult {
  int64_t count;    // intervals kept
  int64_t k_first;  // step index of the first kept interval (k_end if none)
  int64_t k_last;   // step index of the last kept interval (-1 if none)
};

// Marches one ray from step k_start; calls emit(i, t_start, t_end) for its i-th kept interval and stops after
// max_samples of them (<= 0: no cap). With `dense`, the caller knows that the max_samples intervals from k_start
// on are all kept (an earlier march found them consecutive) and they are emitted without looking at the grid.
template <typename scalar_t, typename Emit>
MarchResult MarchRay(
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
    bool dense,
    Emit emit) {
  const scalar_t inf = std::numeric_limits<scalar_t>::infinity();
  // Slab test; an axis with d == 0 either contains the origin (no constraint) or misses the box.
  scalar_t t_enter = -inf;
  scalar_t t_exit = inf;
  for (int a = 0; a < 3; ++a) {
    scalar_t lo_t, hi_t;
    if (d[a] == 0) {
      const bool inside = aabb[a] <= o[a] && o[a] <= aabb[a + 3];
      lo_t = inside ? -inf : inf;
      hi_t = inside ? inf : -inf;
    } else {
      const scalar_t t1 = (aabb[a] - o[a]) / d[a];
      const scalar_t t2 = (aabb[a + 3] - o[a]) / d[a];
      lo_t = std::min(t1, t2);
      hi_t = std::max(t1, t2);
    }
    t_enter = std::max(t_enter, lo_t);
    t_exit = std::min(t_exit, hi_t);
  }
  const scalar_t t_min = std::max(t_enter, near);
  const scalar_t t_max = std::min(t_exit, far);
  if (!(t_min < t_max) || !std::isfinite(t_max)) return {0, 0, -1};

  // Cells per unit length along each axis; the cell of a point p is floor((p - lo) * scale), clamped.
  // Everything the inner loop reads is copied to locals (no aliasing with the output arrays).
  const scalar_t ox = o[0], oy = o[1], oz = o[2];
  const scalar_t dx = d[0], dy = d[1], dz = d[2];
  const scalar_t lx = aabb[0], ly = aabb[1], lz = aabb[2];
  const int64_t rx = grid.res[0], ry = grid.res[1], rz = grid.res[2];
  const scalar_t rxf = static_cast<scalar_t>(rx), ryf = static_cast<scalar_t>(ry), rzf = static_cast<scalar_t>(rz);
  const scalar_t sx = rxf / (aabb[3] - lx), sy = ryf / (aabb[4] - ly), sz = rzf / (aabb[5] - lz);
  const double cell_size[3] = {1.0 / static_cast<double>(sx), 1.0 / static_cast<double>(sy),
                               1.0 / static_cast<double>(sz)};
  double inv_d[3];
  for (int a = 0; a < 3; ++a) inv_d[a] = d[a] == 0 ? 0.0 : 1.0 / static_cast<double>(d[a]);
  const double inv_step = 1.0 / static_cast<double>(step);  // for the skipping guesses only
  // Interval k starts at t_min + k * step; every k >= k_end starts at or beyond t_max.
  const double k_end_d = std::ceil((static_cast<double>(t_max) - t_min) / step) + 2.0;
  const int64_t k_end = static_cast<int64_t>(std::min(k_end_d, 9.0e15));

  // Clamped floor of u (equal to clamp(floor(u), 0, res - 1) for finite u): clamping u to [0, res - 1] first
  // makes truncation a floor, without branches.
  auto cell_of = [](scalar_t u, scalar_t res_f, int64_t) -> int64_t {
    return static_cast<int64_t>(std::min(std::max(u, scalar_t(0)), res_f - scalar_t(1)));
  };
  // Interval k and the cell holding its midpoint; false when interval k does not exist.
  auto interval = [&](int64_t k, scalar_t& t0, scalar_t& t1, int64_t* cell) -> bool {
    if (k >= k_end) return false;
    t0 = t_min + static_cast<scalar_t>(k) * step;
    if (!(t0 < t_max)) return false;
    const scalar_t t0_step = t0 + step;
    t1 = std::min(t0_step, t_max);
    const scalar_t mid = (t0 + t1) * scalar_t(0.5);
    const scalar_t px = ox + mid * dx, py = oy + mid * dy, pz = oz + mid * dz;
    cell[0] = cell_of((px - lx) * sx, rxf, rx);
    cell[1] = cell_of((py - ly) * sy, ryf, ry);
    cell[2] = cell_of((pz - lz) * sz, rzf, rz);
    return true;
  };

  // Skipping empty space. Along the ray each axis' cell index is a monotone function of k (every rounded
  // operation in `interval` is monotone), and so is any coarser index cell >> shift. Hence the intervals whose
  // midpoints share a cell (or a block of cells) form a contiguous run of k. The DDA exit of the cell/block
  // gives a guess of where the run ends, which is then confirmed exactly with the same arithmetic (galloping +
  // bisection), so skipping never changes the result.
  auto exit_guess = [&](const int64_t* cell, int shift) -> double {
    double t_exit_cell = std::numeric_limits<double>::infinity();
    for (int a = 0; a < 3; ++a) {
      if (d[a] == 0) continue;
      const int64_t face = ((cell[a] >> shift) + (d[a] > 0 ? 1 : 0)) << shift;
      const double boundary = static_cast<double>(aabb[a]) + face * cell_size[a];
      t_exit_cell = std::min(t_exit_cell, (boundary - o[a]) * inv_d[a]);
    }
    return std::ceil((t_exit_cell - t_min) * inv_step - 0.5);  // first k whose midpoint may lie beyond
  };
  // First k after k0 whose midpoint is outside the cell/block (cell >> shift) of k0.
  auto run_end = [&](int64_t k0, const int64_t* cell, int shift, double guess) -> int64_t {
    auto same = [&](int64_t j) {
      scalar_t s0, s1;
      int64_t c[3];
      return interval(j, s0, s1, c) && (c[0] >> shift) == (cell[0] >> shift) &&
             (c[1] >> shift) == (cell[1] >> shift) && (c[2] >> shift) == (cell[2] >> shift);
    };
    int64_t lo = k0;  // same(lo)
    int64_t hi = static_cast<int64_t>(std::min(guess, static_cast<double>(k_end)));
    if (same(hi)) {
      int64_t stride = 1;
      do {  // gallop forwards until the run ends (k_end always ends it)
        lo = hi;
        hi = std::min(lo + stride, k_end);
        stride *= 2;
      } while (same(hi));
    } else if (same(hi - 1)) {
      lo = hi - 1;
    }
    while (hi - lo > 1) {  // first k in (lo, hi] outside the run
      const int64_t m = lo + (hi - lo) / 2;
      if (same(m)) {
        lo = m;
      } else {
        hi = m;
      }
    }
    return hi;
  };

  if (dense) {  // the same arithmetic as `interval`, without the cell lookups
    for (int64_t i = 0; i < max_samples; ++i) {
      const scalar_t t0 = t_min + static_cast<scalar_t>(k_start + i) * step;
      const scalar_t t0_step = t0 + step;
      emit(i, t0, std::min(t0_step, t_max));
    }
    return {max_samples, k_start, k_start + max_samples - 1};
  }

  int64_t count = 0;
  int64_t k_first = k_end;
  int64_t k_last = -1;
  int64_t k = k_start;
  int64_t stepping_cell = -1;  // empty cell whose short run is being stepped through
  scalar_t t0, t1;
  int64_t cell[3];
  while (interval(k, t0, t1, cell)) {
    const int64_t l = (cell[0] * ry + cell[1]) * rz + cell[2];
    if ((bits[l >> 3] >> (l & 7)) & 1) {
      if (count == 0) k_first = k;
      k_last = k;
      emit(count, t0, t1);
      ++count;
      if (count == max_samples) break;
      ++k;
      continue;
    }
    if (l == stepping_cell) {
      ++k;
      continue;
    }
    // Empty cell: skip to the first interval whose midpoint lies outside it (or outside its whole block of
    // 8^3 cells when that block is empty too).
    if (!coarse[((cell[0] >> kBlockShift) * grid.blocks[1] + (cell[1] >> kBlockShift)) * grid.blocks[2] +
                (cell[2] >> kBlockShift)]) {
      const double guess = exit_guess(cell, kBlockShift);
      if (guess > static_cast<double>(k + kMinJump)) {
        k = run_end(k, cell, kBlockShift, guess);
        continue;
      }
    }
    const double guess = exit_guess(cell, 0);
    if (!(guess > static_cast<double>(k + kMinJump))) {  // a short run: step through it
      stepping_cell = l;
      ++k;
      continue;
    }
    k = run_end(k, cell, 0, guess);
  }
  return {count, k_first, k_last};
}

template <typename scalar_t>
void RayMarchKernel(
    const scalar_t* origins,
    const scalar_t* dirs,
    const int64_t* ray_scene,
    const uint8_t* bits,
    const uint8_t* coarse,
    const scalar_t* aabbs,
    const scalar_t* near,
    const scalar_t* far,
    const GridInfo& grid,
    scalar_t step,
    int64_t max_samples,
    int64_t n_rays,
    const int64_t* offsets,  // nullptr: count pass
    int64_t* counts,
    int64_t* k_first,
    uint8_t* dense,  // whether a ray's kept intervals are consecutive steps
    int64_t* out_ray_indices,
    scalar_t* out_t_starts,
    scalar_t* out_t_ends) {
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < n_rays; ++r) {
    const int64_t s = ray_scene[r];
    const uint8_t* scene_bits = bits + s * grid.n_bytes;
    const uint8_t* scene_coarse = coarse + s * grid.n_blocks;
    const scalar_t* o = origins + 3 * r;
    const scalar_t* d = dirs + 3 * r;
    const scalar_t* box = aabbs + 6 * s;
    if (offsets == nullptr) {
      const MarchResult res = MarchRay<scalar_t>(o, d, box, scene_bits, scene_coarse, grid, near[r], far[r], step,
                                                 max_samples, 0, false, [](int64_t, scalar_t, scalar_t) {});
      counts[r] = res.count;
      k_first[r] = res.k_first;
      dense[r] = res.k_last - res.k_first + 1 == res.count;
    } else if (counts[r] > 0) {
      // Resume at the first kept interval and stop after the counted ones.
      const int64_t base = offsets[r];
      MarchRay<scalar_t>(o, d, box, scene_bits, scene_coarse, grid, near[r], far[r], step, counts[r], k_first[r],
                         dense[r] != 0, [&](int64_t i, scalar_t t0, scalar_t t1) {
                           out_ray_indices[base + i] = r;
                           out_t_starts[base + i] = t0;
                           out_t_ends[base + i] = t1;
                         });
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> RayMarchCpu(
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
  RENDERERS_CHECK_CPU(origins);
  const int64_t n_rays = origins.size(0);
  GridInfo grid{{res_x, res_y, res_z}, bits.size(1), {0, 0, 0}, 1};
  for (int a = 0; a < 3; ++a) {
    grid.blocks[a] = (grid.res[a] + (1 << kBlockShift) - 1) >> kBlockShift;
    grid.n_blocks *= grid.blocks[a];
  }
  auto coarse = at::zeros({bits.size(0), grid.n_blocks}, bits.options());
  CoarseOccupancy(bits.data_ptr<uint8_t>(), bits.size(0), grid, coarse.data_ptr<uint8_t>());
  auto counts = at::zeros({n_rays}, ray_scene.options());
  auto k_first = at::zeros({n_rays}, ray_scene.options());
  auto dense = at::zeros({n_rays}, bits.options());
  at::Tensor ray_indices, t_starts, t_ends;
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "RayMarchCpu", [&] {
    const scalar_t step_s = static_cast<scalar_t>(step);
    RayMarchKernel<scalar_t>(
        origins.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), ray_scene.data_ptr<int64_t>(),
        bits.data_ptr<uint8_t>(), coarse.data_ptr<uint8_t>(), aabbs.data_ptr<scalar_t>(), near.data_ptr<scalar_t>(),
        far.data_ptr<scalar_t>(), grid, step_s, max_samples, n_rays, nullptr, counts.data_ptr<int64_t>(),
        k_first.data_ptr<int64_t>(), dense.data_ptr<uint8_t>(), nullptr, nullptr, nullptr);
    const auto inclusive = at::cumsum(counts, 0);
    const int64_t total = n_rays > 0 ? inclusive[n_rays - 1].item<int64_t>() : 0;
    const auto offsets = inclusive.sub(counts).contiguous();
    ray_indices = at::empty({total}, ray_scene.options());
    t_starts = at::empty({total}, origins.options());
    t_ends = at::empty({total}, origins.options());
    if (total > 0) {
      RayMarchKernel<scalar_t>(
          origins.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), ray_scene.data_ptr<int64_t>(),
          bits.data_ptr<uint8_t>(), coarse.data_ptr<uint8_t>(), aabbs.data_ptr<scalar_t>(),
          near.data_ptr<scalar_t>(), far.data_ptr<scalar_t>(), grid, step_s, max_samples, n_rays,
          offsets.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), k_first.data_ptr<int64_t>(),
          dense.data_ptr<uint8_t>(), ray_indices.data_ptr<int64_t>(), t_starts.data_ptr<scalar_t>(), t_ends.data_ptr<scalar_t>());
    }
  });
  return std::make_tuple(ray_indices, t_starts, t_ends);
}
