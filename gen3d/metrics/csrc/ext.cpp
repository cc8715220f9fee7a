// Python bindings of gen3d.metrics' native kernels (bindings only; the kernels live in *_cpu.cpp).
#include <torch/extension.h>

#include "metrics.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "gen3d.metrics native kernels: nearest-neighbour distances and auction EMD (C++/OpenMP)";
  m.def("nn_distance", &NnDistanceCpu, "Squared nearest-neighbour distances both ways (B,N,3),(B,M,3)",
        pybind11::arg("x"), pybind11::arg("y"), pybind11::arg("with_index") = false);
  m.def("emd_auction", &EmdAuctionCpu,
        "Auction matching of equal-size clouds: (mean cost (B,), assignment (B,N), lower bound (B,))",
        pybind11::arg("x"), pybind11::arg("y"), pybind11::arg("rel_eps"), pybind11::arg("stop_above"));
}
