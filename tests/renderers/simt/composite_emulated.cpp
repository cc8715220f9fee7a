// The CUDA compositing kernels (renderers/csrc/composite/composite_kernels.cuh) run under the warp emulator, with a
// C interface for ctypes. Each entry returns the number of errors at warp intrinsics, or -1 for a combination of
// layout, group width and channels the kernels do not have.
#include <memory>
#include <type_traits>

#include "warp_emulator.h"
// warp_emulator.h first: it defines the CUDA keywords and intrinsics the kernels use.
#include "composite_kernels.cuh"

using namespace composite_kernels;

namespace {

int64_t Blocks(int64_t threads) {
  return (threads + kThreads - 1) / kThreads;
}

// layout 0: one thread per ray; 1: one group of `group` lanes per ray.
template <typename Args, typename ThreadKernel, typename GroupKernel>
int Run(int layout, int group, const Args& a, ThreadKernel thread_kernel, GroupKernel group_kernel) {
  auto by_channels = [&](auto kc) -> int {
    constexpr int kC = decltype(kc)::value;
    if (layout == 0) return simt::Launch(Blocks(a.n_rays), kThreads, a.n_rays, [&] { thread_kernel(kc, a); });
    if constexpr (kC > 0) {
      if (group == 32) {
        return simt::Launch(Blocks(a.n_rays * 32), kThreads, a.n_rays * 32, [&] {
          group_kernel(kc, std::integral_constant<int, 32>{}, a);
        });
      }
      if (group == 8) {
        return simt::Launch(Blocks(a.n_rays * 8), kThreads, a.n_rays * 8, [&] {
          group_kernel(kc, std::integral_constant<int, 8>{}, a);
        });
      }
    }
    return -1;
  };
  if (a.n_channels == 3) return by_channels(std::integral_constant<int, 3>{});
  if (a.n_channels == 1) return by_channels(std::integral_constant<int, 1>{});
  return by_channels(std::integral_constant<int, 0>{});
}

template <typename T>
int Forward(int layout, int group, const ForwardArgs<T>& a) {
  return Run(
      layout, group, a,
      [](auto kc, const ForwardArgs<T>& args) { CompositeForwardCudaKernel<T, decltype(kc)::value>(args); },
      [](auto kc, auto kg, const ForwardArgs<T>& args) {
        CompositeForwardGroupKernel<T, decltype(kc)::value, decltype(kg)::value>(args);
      });
}

template <typename T>
int Backward(int layout, int group, const BackwardArgs<T>& a) {
  return Run(
      layout, group, a,
      [](auto kc, const BackwardArgs<T>& args) { CompositeBackwardCudaKernel<T, decltype(kc)::value>(args); },
      [](auto kc, auto kg, const BackwardArgs<T>& args) {
        CompositeBackwardGroupKernel<T, decltype(kc)::value, decltype(kg)::value>(args);
      });
}

}  // namespace

#define COMPOSITE_EMULATED(T, SUFFIX)                                                                             \
  extern "C" int composite_forward_##SUFFIX(                                                                      \
      int layout, int group, const T* sigmas, const T* alphas, const T* values, const T* t_starts, const T* t_ends, \
      const int64_t* chunk_starts, const int64_t* chunk_cnts, int64_t n_rays, int64_t n_channels, T eps,          \
      T* out_values, T* out_opacity, T* out_depth, T* out_trans, T* out_alphas, int64_t* out_live) {              \
    const ForwardArgs<T> a{sigmas,       alphas,     values,     t_starts, t_ends,      chunk_starts,             \
                           chunk_cnts,   n_rays,     n_channels, eps,      out_values,  out_opacity,              \
                           out_depth,    out_trans,  out_alphas, out_live};                                       \
    return Forward<T>(layout, group, a);                                                                          \
  }                                                                                                               \
  extern "C" int composite_backward_##SUFFIX(                                                                     \
      int layout, int group, const T* grad_values, const T* grad_opacity, const T* grad_depth, const T* values,   \
      const T* t_starts, const T* t_ends, const int64_t* chunk_starts, const int64_t* chunk_cnts,                 \
      const T* out_values, const T* out_opacity, const T* out_depth, const T* trans, const T* alphas,             \
      const int64_t* live_cnts, int64_t n_rays, int64_t n_channels, T* grad_sigmas, T* grad_vals) {               \
    const BackwardArgs<T> a{grad_values, grad_opacity, grad_depth, values,    t_starts,  t_ends,                  \
                            chunk_starts, chunk_cnts,  out_values, out_opacity, out_depth, trans,                 \
                            alphas,      live_cnts,    n_rays,     n_channels, grad_sigmas, grad_vals};           \
    return Backward<T>(layout, group, a);                                                                         \
  }

COMPOSITE_EMULATED(float, f32)
COMPOSITE_EMULATED(double, f64)
