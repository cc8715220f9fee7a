// Shared includes and argument checks for the renderers native ops. Only light ATen headers are included
// here so that kernels (and their CUDA twins) compile quickly; ext.cpp alone pulls in torch/extension.h.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/util/Exception.h>

#define RENDERERS_CHECK_CPU(x) TORCH_CHECK(!(x).is_cuda(), #x " must be a CPU tensor")
#define RENDERERS_CHECK_CUDA(x) TORCH_CHECK((x).is_cuda(), #x " must be a CUDA tensor")
#define RENDERERS_CHECK_DIM(x, n) TORCH_CHECK((x).dim() == (n), #x " must have " #n " dimensions")
#define RENDERERS_CHECK_DTYPE(x, t) TORCH_CHECK((x).scalar_type() == (t), #x " has the wrong dtype")
#define RENDERERS_NO_CUDA(op) TORCH_CHECK(false, op ": renderers_ops was built without CUDA support")

#include <string>
#include <type_traits>

// Error messages pass numbers as std::to_string(...), never as raw integers: an extension built by a toolchain
// that links libstdc++ statically crashed (SIGSEGV in the stream's number formatting) while formatting
// TORCH_CHECK(cond, "...", n) on a GPU machine, where the same message as a string raised cleanly.

// Calls f(std::integral_constant<int, kC>{}) with kC = n for the common channel counts 1 and 3 (so kernels can
// unroll their channel loops) and kC = 0 (channel count read at run time) otherwise.
template <typename F>
inline void RenderersDispatchChannels(int64_t n, F&& f) {
  if (n == 3) {
    f(std::integral_constant<int, 3>{});
  } else if (n == 1) {
    f(std::integral_constant<int, 1>{});
  } else {
    f(std::integral_constant<int, 0>{});
  }
}
