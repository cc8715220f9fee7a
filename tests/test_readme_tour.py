"""The README's tour runs as written: every command of its ``bash`` block, after a tiny ``gen3d demo``.

The demo runs through the same pipeline as ``make demo`` with small sizes and step counts, so that the tour finds
every file it names where the real demo puts it; each tour command then runs unchanged in the demo's working
directory and must exit with code 0 and leave its outputs.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tour_commands() -> list[list[str]]:
    """The commands of the README's "A tour of the CLI" block, as argument lists without the leading ``gen3d``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A tour of the CLI\s*\n```bash\n(.*?)\n```", text, re.S)
    assert block, "README.md has no ```bash block under '## A tour of the CLI'"
    commands = []
    for line in block.group(1).splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == "gen3d", f"the tour runs gen3d commands only: {line}"
            commands.append(argv[1:])
    return commands


def test_tour_block_is_found_and_uses_the_demo_outputs():
    commands = tour_commands()
    assert len(commands) >= 10
    named = " ".join(" ".join(c) for c in commands)
    for path in ("runs/demo/prior/checkpoints/last.ckpt", "runs/demo/graf/graf.ckpt", "runs/demo/data"):
        assert path in named


def _tiny_demo(out: Path) -> None:
    """``make demo``'s pipeline at tiny sizes: the same files in the same places."""
    from gen3d.pipelines.demo import DataOptions, run_demo
    from gen3d.pipelines.graf_demo import load_graf_demo_config
    from gen3d.pipelines.lion_demo import load_lion_demo_config

    lion = load_lion_demo_config(vae_steps=2, prior_steps=2, per_class=40, draws=2, steps=2)
    graf = load_graf_demo_config(
        iterations=1, per_class=2, views=2, heldout_per_class=1, n_eval=4, n_consistency=2, geometry_per_class=1,
        turntable_size=16,
    )  # fmt: skip
    run_demo(out, DataOptions(classes="chair", per_class=20, points=2048, preview=1), lion, graf)


@pytest.mark.slow
def test_readme_tour_runs_after_the_demo(tmp_path, monkeypatch, capsys):
    """Every tour command exits 0 in a folder where a (tiny) demo ran; under 2 min on 2 cores."""
    from gen3d.cli.main import main

    monkeypatch.chdir(tmp_path)
    _tiny_demo(Path("runs/demo"))
    for argv in tour_commands():
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 0, f"gen3d {' '.join(argv)} exited {code}: {err[-2000:]}"
    for written in ("runs/tour/lion/samples.npz", "runs/tour/chair.obj", "runs/tour/graf/grid.png"):
        assert (tmp_path / written).is_file(), written
    # the outputs describe themselves: the split's clouds were resampled to the samples' count, and said so
    import numpy as np

    protocol = json.loads((tmp_path / "runs/tour/lion/metrics.json").read_text())["protocol"]
    assert protocol["refs"]["path"] == "runs/demo/data/chair/test" and protocol["refs"]["resampled"]
    assert protocol["refs"]["points"] == protocol["samples"]["points"] < protocol["refs"]["points_read"]
    with np.load(tmp_path / "runs/tour/lion/samples.npz", allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
    assert (meta["checkpoint"], meta["sampler"], meta["steps"]) == (
        "runs/demo/prior/checkpoints/last.ckpt",
        "dpm-sde",
        20,
    )
    assert json.loads((tmp_path / "runs/tour/graf/sampler.json").read_text())["model"] == "graf"
