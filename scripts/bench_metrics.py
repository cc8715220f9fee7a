"""Benchmark of gen3d.metrics on realistic shapes (procedural airplanes and chairs, 2048 points each).

Measures, in one run:

1. the pairwise Chamfer matrix of 128 x 128 clouds: native C++/OpenMP kernel against the torch reference
   (the reference is timed on the first rows only and scaled linearly to the full matrix);
2. approximate (auction) against exact EMD on pairs of shapes, all on one thread (CPU time of the calling
   thread, pairs interleaved): the exact cost by POT's network simplex (``ot.emd``) and by SciPy's
   ``linear_sum_assignment`` (their time ratio and largest difference), and the time ratio and relative error
   of the approximation;
3. the full protocol (MMD/COV/1-NNA under CD and EMD, and JSD; ``point_cloud_metrics(emd="approx")``) on
   airplanes, measured on 32 x 32 and 64 x 64 subsets and extrapolated to 405 samples x 405 references
   (PointFlow's airplane test-set size): the EMD part, a nearest-neighbour search whose share of solved pairs
   falls as the sets grow, by the power law through the two subsets; the Chamfer matrices by their pair count;
   JSD measured. With ``--full`` the 405 x 405 protocol is also run for real. For comparison, the EMD matrices
   computed in full (``emd_full=True``) at the per-pair time of a 64-pair batch on all threads.

Usage: ``python scripts/bench_metrics.py [--pairs 20] [--torch-rows 8] [--full]``
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from gen3d.data.shapes import shape_points
from gen3d.metrics import (
    APPROX_REL_EPS,
    emd_approx,
    emd_exact,
    jsd_between_point_cloud_sets,
    pairwise_distances,
    point_cloud_metrics,
)
from gen3d.metrics._native import load_native
from gen3d.metrics.earth_mover import exact_solver
from gen3d.metrics.nearest import emd_nearest

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


def _pairs(n: int) -> int:
    """Distance pairs of the protocol for n samples and n references (S x R plus the two symmetric halves)."""
    return n * n + 2 * (n * (n - 1) // 2)


def protocol_subset(samples: np.ndarray, refs: np.ndarray) -> dict[str, float]:
    """The protocol's parts on one subset, timed separately (what point_cloud_metrics runs)."""
    s, r = torch.from_numpy(samples), torch.from_numpy(refs)
    start = time.perf_counter()
    for a, b in ((samples, refs), (samples, None), (refs, None)):
        pairwise_distances(a, b, metric="cd", progress=False)
    t_cd = time.perf_counter() - start
    found, t_emd = timed(emd_nearest, s, r, "approx", APPROX_REL_EPS, progress=False)
    _, t_jsd = timed(jsd_between_point_cloud_sets, samples, refs)
    return {
        "n": len(samples),
        "cd_s": t_cd,
        "emd_s": t_emd,
        "jsd_s": t_jsd,
        "solved": found.pairs_computed,
        "given_up": found.pairs_given_up,
        "pairs": found.pairs_total,
    }


def bench_protocol(full: bool) -> dict[str, object]:
    n = PROTOCOL_SET
    refs, samples = shapes("airplane", 0, n), shapes("airplane", n, n)
    small, large = (protocol_subset(samples[:k], refs[:k]) for k in (32, 64))
    exponent = math.log(large["emd_s"] / small["emd_s"]) / math.log(large["n"] / small["n"])
    scale = n / large["n"]
    # The EMD matrices in full, for comparison: per-pair time of a 64-pair batch with all threads.
    _, t_batch = timed(emd_approx, torch.from_numpy(refs[:64]), torch.from_numpy(samples[:64]))
    out: dict[str, object] = {
        "subsets": (small, large),
        "exponent": exponent,
        "emd_s": large["emd_s"] * scale**exponent,
        "cd_s": large["cd_s"] * _pairs(n) / large["pairs"],
        "jsd_s": large["jsd_s"] * scale,
        "emd_full_s": _pairs(n) * t_batch / 64,
        "ms_per_pair_batch": 1e3 * t_batch / 64,
    }
    if full:
        start = time.perf_counter()
        out["full_metrics"] = point_cloud_metrics(samples, refs, emd="approx", progress=False)
        out["full_s"] = time.perf_counter() - start
    return out


def protocol_exact_h(emd: dict[str, float], threads: int) -> float:
    """Hours for the full EMD matrices of the 405 x 405 protocol with the exact solver (one pair per thread)."""
    return _pairs(PROTOCOL_SET) * emd["exact_s_per_pair"] / threads / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20, help="EMD pairs compared with the exact solver")
    parser.add_argument("--torch-rows", type=int, default=8, help="rows of the Chamfer matrix timed with torch")
    parser.add_argument("--full", action="store_true", help="also run the 405 x 405 protocol (minutes)")
    args = parser.parse_args()
    if load_native() is None:
        raise SystemExit("the native gen3d_metrics extension is unavailable; nothing to compare")

    threads = torch.get_num_threads()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"gen3d.metrics benchmark: torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs, load {load}")
    print(f"shapes: procedural airplanes and chairs, {POINTS} points each\n")

    cd = bench_chamfer(args.torch_rows)
    emd = bench_emd(args.pairs)
    protocol = bench_protocol(args.full)

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
        ("  relative error, mean", f"{100 * emd['mean_rel_err']:.3f} %", "target <= 0.2 %"),
        (
            "  relative error, min / max",
            f"{100 * emd['min_rel_err']:.3f} / {100 * emd['max_rel_err']:.3f} %",
            "max <= 0.5 %",
        ),
        (f"Protocol on airplanes, emd='approx', {threads} threads", "", ""),
        *[
            (
                f"  {p['n']} x {p['n']}: EMD solved / given up / pairs",
                f"{p['solved']} / {p['given_up']} / {p['pairs']}",
                f"{p['emd_s']:.1f} s EMD, {p['cd_s']:.1f} s CD, {p['jsd_s']:.1f} s JSD",
            )
            for p in protocol["subsets"]
        ],
        (f"  {PROTOCOL_SET} x {PROTOCOL_SET} extrapolated ({_pairs(PROTOCOL_SET)} pairs)", "", ""),
        ("    EMD nearest neighbours", f"{protocol['emd_s'] / 60:.1f} min", f"time ~ n^{protocol['exponent']:.2f}"),
        ("    Chamfer matrices", f"{protocol['cd_s'] / 60:.1f} min", ""),
        ("    JSD", f"{protocol['jsd_s']:.1f} s", ""),
        (
            "    total",
            f"{(protocol['emd_s'] + protocol['cd_s'] + protocol['jsd_s']) / 60:.1f} min",
            "target <= 15 min",
        ),
        (
            "    EMD matrices in full instead (emd_full=True)",
            f"{protocol['emd_full_s'] / 60:.1f} min",
            f"{protocol['ms_per_pair_batch']:.1f} ms/pair",
        ),
        (f"  exact EMD matrices in full ({emd['exact_solver']})", f"{protocol_exact_h(emd, threads):.1f} h", ""),
        *(
            [(f"  {PROTOCOL_SET} x {PROTOCOL_SET} measured (--full)", f"{protocol['full_s'] / 60:.1f} min", "")]
            if "full_s" in protocol
            else []
        ),
    ]
    width = max(len(r[0]) for r in rows) + 2
    for name, value, note in rows:
        print(f"{name:<{width}}{value:>20}  {note}")
    if "full_metrics" in protocol:
        print("405 x 405 metrics: " + ", ".join(f"{k} {v:.6g}" for k, v in protocol["full_metrics"].items()))


if __name__ == "__main__":
    main()
