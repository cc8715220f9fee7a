// Helpers shared by the metric kernels: function multi-versioning and small numeric constants.
#pragma once

#include <limits>

// Hot loops are compiled several times (AVX-512, AVX2, baseline) and the best one the CPU supports is
// picked when the library loads. The build uses plain -O3 (no -march), so this is what lets the
// `#pragma omp simd` loops use wide vectors while the library still runs on any x86-64 CPU.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(GEN3D_NO_MULTIVERSION)
#define GEN3D_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GEN3D_MULTIVERSION
#endif

#if defined(__GNUC__)
#define GEN3D_INLINE inline __attribute__((always_inline))
#else
#define GEN3D_INLINE inline
#endif

namespace gen3d_metrics {

template <typename T>
constexpr T Inf() {
  return std::numeric_limits<T>::infinity();
}

}  // namespace gen3d_metrics
