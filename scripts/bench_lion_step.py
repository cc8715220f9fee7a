"""Cost of one training step of the demo's latent priors, and of the two pieces gen3d made faster for it.

Each measurement alternates the two variants in the same process (``--rounds`` rounds, medians reported), because
a shared 2-core machine changes speed by 10-20 % from one minute to the next:

* trilinear devoxelisation forward + backward, ``gather`` (the CPU default) against PyTorch's ``grid_sample``, on
  the demo's widest voxel branch (batch 8, 512 points, 32 channels, 8^3 grid);
* one Adam step over the demo's two priors (980k parameters), ``fused=True`` (what the LION modules use) against
  the per-tensor loop;
* a whole step of both priors (forward, backward, Adam) with the defaults, and with ``grid_sample`` and the
  per-tensor Adam, as the demo trained before.

    python scripts/bench_lion_step.py                 # one thread, 7 rounds
    python scripts/bench_lion_step.py --threads 2 --rounds 11
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import torch


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Milliseconds per call of ``fn`` (after two warm-up calls)."""
    fn()
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def alternate(variants: dict[str, Callable[[], object]], rounds: int, repeats: int) -> dict[str, float]:
    """Median milliseconds per call of each variant, the variants taking turns in every round."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(timed(fn, repeats))
    return {k: statistics.median(v) for k, v in times.items()}


def bench_devoxelize(b: int, n: int, rounds: int, g: torch.Generator) -> dict[str, float]:
    """Trilinear devoxelisation forward + backward on the widest voxel branch: ``gather`` against ``grid_sample``."""
    import gen3d.models.lion.pvcnn as pv

    r, c = 8, 32
    nc = pv.normalize_coords(torch.randn(b, n, 3, generator=g), r)
    corners = pv.trilinear_corners(nc, r)
    grid = torch.randn(b, c, r, r, r, generator=g, requires_grad=True)
    return alternate(
        {
            "gather": lambda: pv.devoxelize(grid, nc, corners, impl="gather").sum().backward(),
            "grid_sample": lambda: pv.devoxelize(grid, nc, impl="grid_sample").sum().backward(),
        },
        rounds,
        50,
    )


def bench_priors(config: dict, b: int, n: int, rounds: int, g: torch.Generator) -> tuple[dict, dict]:
    """An Adam step over both priors (fused against the loop) and a whole prior step (now against before)."""
    import gen3d.models.lion.pvcnn as pv
    from gen3d.models.lion import LION

    torch.manual_seed(0)
    net = LION(config)
    params = list(net.priors().parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    fused = torch.optim.Adam(params, lr=1e-6, fused=True)
    loop = torch.optim.Adam(params, lr=1e-6, foreach=False)
    adam = alternate({"fused": fused.step, "loop": loop.step}, rounds, 30)

    z = torch.randn(b, config["style_dim"], generator=g)
    h = torch.randn(b, n, 3 + config["latent_dim"], generator=g)
    real_devox, real_build = pv.devoxelize, pv.PointVoxelMap.build

    def step(opt: torch.optim.Optimizer, before: bool) -> None:
        if before:  # as the demo trained before: grid_sample in every block
            pv.devoxelize = functools.partial(real_devox, impl="grid_sample")
            pv.PointVoxelMap.build = classmethod(
                lambda cls, xyz, res, frame="sphere": cls(pv.normalize_coords(xyz, res, frame=frame), None)
            )
        try:
            loss_g, loss_l = net.prior_losses(None, latents=(z, h))
            (loss_g + loss_l).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        finally:
            pv.devoxelize, pv.PointVoxelMap.build = real_devox, real_build

    whole = alternate(
        {"now": lambda: step(fused, False), "before": lambda: step(loop, True)}, rounds, max(3, 40 // rounds)
    )
    return adam, whole


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1, as each demo process)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of alternating measurements (default 7)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from gen3d.pipelines.lion_demo import load_lion_demo_config

    demo = load_lion_demo_config()
    g = torch.Generator().manual_seed(0)
    b, n = demo.batch // 2, demo.points  # one of the demo's two data-parallel processes
    devox = bench_devoxelize(b, n, args.rounds, g)
    adam, whole = bench_priors(demo.config, b, n, args.rounds, g)

    print(f"threads {args.threads}, {args.rounds} alternating rounds, medians (ms per call)")
    print(f"{'what':<48}{'gen3d':>10}{'reference':>11}{'ratio':>8}")
    rows = [
        ("devoxelize fwd+bwd, gather vs grid_sample", devox["gather"], devox["grid_sample"]),
        ("Adam step over both priors, fused vs loop", adam["fused"], adam["loop"]),
        ("prior training step, now vs before", whole["now"], whole["before"]),
    ]
    for name, ours, ref in rows:
        print(f"{name:<48}{ours:>10.2f}{ref:>11.2f}{ref / ours:>7.2f}x")


if __name__ == "__main__":
    main()
