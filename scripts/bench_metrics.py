"""Benchmark of gen3d.metrics on realistic shapes (procedural airplanes and chairs, 2048 points each).

Measures, in one run:

1. the pairwise Chamfer matrix of 128 x 128 clouds: native C++/OpenMP kernel against the torch reference
   (the reference is timed on the first rows only and scaled linearly to the full matrix);
2. approximate (auction) against exact EMD on pairs of shapes, all on one thread (CPU time of the calling
   thread, pairs interleaved): the exact cost by POT's network simplex (``ot.emd``) and by SciPy's
   ``linear_sum_assignment`` (their time ratio and largest difference), and the time ratio and relative error
   of the approximation;
3. the time of the full protocol (MMD/COV/1-NNA under CD and EMD, and JSD) for 405 samples x 405 references,
   PointFlow's airplane test-set size, extrapolated from per-pair times measured here.

Usage: ``python scripts/bench_metrics.py [--pairs 20] [--torch-rows 8]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from gen3d.data.shapes import shape_points
from gen3d.metrics import emd_approx, emd_exact, jsd_between_point_cloud_sets, pairwise_distances
from gen3d.metrics._native import load_native
from gen3d.metrics.earth_mover import exact_solver

POINTS = 2048
PROTOCOL_SET = 405  # PointFlow's airplane test split


def shapes(name: str, start: int, count: int) -> np.ndarray:
    """(count, POINTS, 3) float32 surface samples of procedural shapes of one class."""
    return np.stack([shape_points(name, i, seed=0, points=POINTS) for i in range(start, start + count)])


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def bench_chamfer(torch_rows: int) -> dict[str, float]:
    a = np.concatenate([shapes("airplane", 0, 64), shapes("chair", 0, 64)])  # (128, 2048, 3)
    b = np.concatenate([shapes("airplane", 64, 64), shapes("chair", 64, 64)])
    d_native, t_native = timed(pairwise_distances, a, b, metric="cd", impl="native", progress=False)
    d_torch, t_rows = timed(pairwise_distances, a[:torch_rows], b, metric="cd", impl="torch", progress=False)
    rel = np.abs(d_native[:torch_rows] - d_torch) / np.maximum(d_torch, 1e-12)
    return {
        "pairs": a.shape[0] * b.shape[0],
        "native_s": t_native,
        "torch_s": t_rows * a.shape[0] / torch_rows,
        "torch_measured_pairs": torch_rows * b.shape[0],
        "max_rel_diff": float(rel.max()),
    }


def bench_emd(pairs: int) -> dict[str, float]:
    half = pairs // 2
    x = torch.from_numpy(np.concatenate([shapes("airplane", 200, half), shapes("chair", 200, pairs - half)]))
    y = torch.from_numpy(np.concatenate([shapes("airplane", 300, half), shapes("chair", 300, pairs - half)]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # every solver on the calling thread
    solvers = ("pot", "scipy") if exact_solver("auto") == "pot" else ("scipy",)
    seconds = dict.fromkeys((*solvers, "approx"), 0.0)
    values = {name: np.empty(pairs) for name in seconds}
    try:
        emd_approx(x[:1], y[:1])  # warm-up (extension load)
        for i in range(pairs):  # interleaved, so that a change of machine load hits all alike
            for name in seconds:
                start = time.thread_time()
                if name == "approx":
                    values[name][i] = emd_approx(x[i : i + 1], y[i : i + 1])[0].item()
                else:
                    values[name][i] = emd_exact(x[i : i + 1], y[i : i + 1], num_workers=1, solver=name)[0].item()
                seconds[name] += time.thread_time() - start
    finally:
        torch.set_num_threads(threads)
    exact = values[solvers[0]]
    rel = (values["approx"] - exact) / exact
    out = {
        "pairs": pairs,
        "exact_solver": solvers[0],
        "exact_s_per_pair": seconds[solvers[0]] / pairs,
        "scipy_s_per_pair": seconds["scipy"] / pairs,
        "approx_s_per_pair": seconds["approx"] / pairs,
        "mean_rel_err": float(rel.mean()),
        "max_rel_err": float(rel.max()),
        "min_rel_err": float(rel.min()),
        "mean_emd": float(exact.mean()),
    }
    if "pot" in solvers:
        out["pot_s_per_pair"] = seconds["pot"] / pairs
        out["pot_scipy_max_rel_diff"] = float(np.max(np.abs(values["pot"] - values["scipy"]) / values["scipy"]))
    return out


def bench_protocol(chamfer: dict[str, float], emd: dict[str, float]) -> dict[str, float]:
    n = PROTOCOL_SET
    pairs = n * n + 2 * (n * (n - 1) // 2)  # samples x refs, plus the two symmetric matrices
    # EMD per pair with all threads, measured on a batch of 64 pairs of airplanes.
    x = torch.from_numpy(shapes("airplane", 400, 64))
    y = torch.from_numpy(shapes("airplane", 464, 64))
    _, t_batch = timed(emd_approx, x, y)
    refs, samples = shapes("airplane", 0, n), shapes("airplane", n, n)
    _, t_jsd = timed(jsd_between_point_cloud_sets, samples, refs)
    cd_per_pair = chamfer["native_s"] / chamfer["pairs"]
    emd_per_pair = t_batch / 64
    return {
        "pairs": pairs,
        "cd_s": pairs * cd_per_pair,
        "emd_approx_s": pairs * emd_per_pair,
        "emd_exact_s": pairs * emd["exact_s_per_pair"] / torch.get_num_threads(),
        "jsd_s": t_jsd,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20, help="EMD pairs compared with the exact solver")
    parser.add_argument("--torch-rows", type=int, default=8, help="rows of the Chamfer matrix timed with torch")
    args = parser.parse_args()
    if load_native() is None:
        raise SystemExit("the native gen3d_metrics extension is unavailable; nothing to compare")

    threads = torch.get_num_threads()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"gen3d.metrics benchmark: torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs, load {load}")
    print(f"shapes: procedural airplanes and chairs, {POINTS} points each\n")

    cd = bench_chamfer(args.torch_rows)
    emd = bench_emd(args.pairs)
    protocol = bench_protocol(cd, emd)

    rows = [
        ("Chamfer matrix 128 x 128 (16384 pairs)", "", ""),
        ("  native C++/OpenMP", f"{cd['native_s']:.2f} s", ""),
        (
            f"  torch reference (measured {cd['torch_measured_pairs']} pairs, scaled x{128 // args.torch_rows})",
            f"{cd['torch_s']:.2f} s",
            "",
        ),
        ("  speed-up native / torch", f"{cd['torch_s'] / cd['native_s']:.1f}x", "target >= 3x"),
        ("  max relative difference", f"{cd['max_rel_diff']:.1e}", ""),
        (f"EMD, {emd['pairs']} pairs (airplanes, chairs), one thread, CPU time", "", ""),
        *(
            [
                ("  exact, POT network simplex (ot.emd)", f"{1e3 * emd['pot_s_per_pair']:.0f} ms/pair", ""),
                ("  exact, SciPy linear_sum_assignment", f"{1e3 * emd['scipy_s_per_pair']:.0f} ms/pair", ""),
                ("  speed-up POT / SciPy", f"{emd['scipy_s_per_pair'] / emd['pot_s_per_pair']:.1f}x", ""),
                ("  max relative difference POT / SciPy", f"{emd['pot_scipy_max_rel_diff']:.1e}", ""),
            ]
            if "pot_s_per_pair" in emd
            else [
                (
                    "  exact, SciPy linear_sum_assignment (POT not installed)",
                    f"{1e3 * emd['scipy_s_per_pair']:.0f} ms/pair",
                    "",
                )
            ]
        ),
        ("  approx (native auction)", f"{1e3 * emd['approx_s_per_pair']:.1f} ms/pair", ""),
        (
            f"  speed-up approx / exact ({emd['exact_solver']})",
            f"{emd['exact_s_per_pair'] / emd['approx_s_per_pair']:.1f}x",
            "",
        ),
        ("  relative error, mean", f"{100 * emd['mean_rel_err']:.3f} %", "target <= 1 %"),
        ("  relative error, min / max", f"{100 * emd['min_rel_err']:.3f} / {100 * emd['max_rel_err']:.3f} %", ""),
        (f"Full protocol, {PROTOCOL_SET} x {PROTOCOL_SET} (extrapolated, {threads} threads)", "", ""),
        ("  distance pairs (S x R + S x S + R x R, symmetric halves)", f"{protocol['pairs']}", ""),
        ("  Chamfer matrices", f"{protocol['cd_s'] / 60:.1f} min", ""),
        ("  EMD matrices, approx", f"{protocol['emd_approx_s'] / 60:.1f} min", ""),
        (f"  EMD matrices, exact ({emd['exact_solver']})", f"{protocol['emd_exact_s'] / 3600:.1f} h", ""),
        ("  JSD (measured)", f"{protocol['jsd_s']:.1f} s", ""),
        (
            "  total with approx EMD",
            f"{(protocol['cd_s'] + protocol['emd_approx_s'] + protocol['jsd_s']) / 60:.1f} min",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows) + 2
    for name, value, note in rows:
        print(f"{name:<{width}}{value:>16}  {note}")


if __name__ == "__main__":
    main()
