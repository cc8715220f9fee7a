// Python bindings of the renderers native ops (bindings only; kernels live in <op>/).
#include <torch/python.h>

#include "composite/composite_dispatch.h"
#include "raymarch/raymarch_dispatch.h"

static bool WithCuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("with_cuda", &WithCuda, "Whether the CUDA kernels were compiled in");
  m.def("packed_chunks", &PackedChunks, "Per-ray offsets (chunk_starts, chunk_cnts) of sorted packed samples");
  m.def("composite_forward", &CompositeForward, "Fused volume compositing of packed samples (forward)");
  m.def("composite_backward", &CompositeBackward, "Fused volume compositing of packed samples (backward)");
  m.def("raymarch", &RayMarchForward, "Ray marching through B occupancy bitfields with empty-space skipping");
}
