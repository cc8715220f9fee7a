"""Score a trained flow like LION's demo: 60 samples vs the 60 val chairs, the oracle and blob baselines, 16 draws,
sampling time, bits per point on the test split and the chairs-vs-tables AUROC."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gen3d.data.shapes import generate_split
from gen3d.lit.lion_module import derived_seed
from gen3d.metrics import ReferenceDistances, point_cloud_metrics
from gen3d.pipelines.flow_eval import evaluate_nll
from gen3d.pipelines.lion_demo import demo_datamodule, gaussian_blobs, load_lion_demo_config, reference_clouds
from gen3d.pipelines.sample import sample_flow

ckpt, out = sys.argv[1], sys.argv[2]
Path(out).mkdir(parents=True, exist_ok=True)
torch.set_num_threads(2)
cfg = load_lion_demo_config()  # LION demo's data: 600 chairs, 512 points, seed 0
dm = demo_datamodule(cfg)
refs, train = reference_clouds(dm), dm.dataset("train")  # the 60 val chairs (held-out points, data frame)
pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))[: len(refs)]
oracle = torch.stack([torch.from_numpy(train.points[int(i)][: cfg.points]) for i in pick])
oracle = oracle * float(dm.norm.std) + torch.as_tensor(dm.norm.mean, dtype=oracle.dtype)
flat = refs.reshape(-1, 3)
blobs = torch.from_numpy(gaussian_blobs(len(refs), cfg.points, flat.mean(0).numpy(), float(flat.std(0).mean()), 0))
t0 = time.perf_counter()
samples, _ = sample_flow(ckpt, len(refs), seed=0, points=cfg.points, device="cpu")  # = gen3d sample --n 60 --points 512
seconds = time.perf_counter() - t0
rd = ReferenceDistances(refs)
score = lambda x, emd: point_cloud_metrics(torch.as_tensor(x), refs, emd=emd, ref_distances=rd, progress=False)  # noqa
rows = {"flow": score(samples, True), "train split (oracle)": score(oracle, True), "Gaussian blobs": score(blobs, True)}
draws = [rows["flow"]["1-NNA-CD"]]
for i in range(1, cfg.draws):
    x, _ = sample_flow(ckpt, len(refs), seed=derived_seed(0, "draw", i), points=cfg.points, device="cpu")
    draws.append(score(x, False)["1-NNA-CD"])
for c in ("chair", "table"):  # the test split of the training class, and another class
    np.save(f"{out}/{c}_test.npy", generate_split([c], "test", cfg.per_class, cfg.seed, 3 * cfg.points).points)
nll = evaluate_nll(ckpt, f"{out}/chair_test.npy", num_points=cfg.points, outliers=f"{out}/table_test.npy")
result = {
    "rows": rows,
    "draws_1nna_cd": draws,
    "sample_seconds_per_shape": seconds / len(refs),
    "nll": {k: v for k, v in nll.items() if k not in ("per_cloud", "protocol")},
}
Path(out, "flow_demo.json").write_text(json.dumps(result, indent=2) + "\n")
for name, r in rows.items():
    print(
        f"| {name} | {r['1-NNA-CD']:.1f} | {r['1-NNA-EMD']:.1f} | {r['COV-CD']:.1f} | {r['COV-EMD']:.1f} | "
        f"{1e3 * r['MMD-CD']:.3f} | {1e2 * r['MMD-EMD']:.3f} | {1e2 * r['JSD']:.2f} |"
    )
d = np.array(draws)
print(
    f"1-NNA-CD over {len(d)} draws: mean {d.mean():.1f} (sem {d.std(ddof=1) / len(d) ** 0.5:.1f}), sd "
    f"{d.std(ddof=1):.1f}, range {d.min():.1f}-{d.max():.1f}; sampling {1e3 * seconds / len(refs):.1f} ms per shape"
)
