"""Sampling progress counts sampler steps: one bar over every step of the loops inside ``step_progress``."""

from __future__ import annotations

import torch

from gen3d.diffusion import NoiseSchedule, loop, make_sampler, sample_loop, step_progress


def test_one_bar_counts_the_steps_of_every_loop(monkeypatch):
    bars = []

    def fake_progress(iterable, description="", total=None, disable=None):
        bar = {"description": description, "total": total, "shown": disable is not True, "advanced": 0}
        bars.append(bar)
        for i, item in enumerate(iterable):
            if i:
                bar["advanced"] += 1
            yield item
        bar["advanced"] += 1

    monkeypatch.setattr(loop, "progress_bar", fake_progress)
    sampler = make_sampler("ddim", NoiseSchedule("linear", 50), num_inference_steps=4)
    model = lambda x, t: torch.zeros_like(x)  # noqa: E731
    with step_progress(3 * len(sampler.timesteps), "sampling", disable=False):
        for _ in range(3):  # three batches
            sample_loop(model, sampler, (2, 5), progress=True)
    outer, *inner = bars
    assert outer["total"] == 12 and outer["shown"] and outer["advanced"] == 12
    assert len(inner) == 3 and not any(b["shown"] for b in inner)  # the loops draw no bar of their own
    bars.clear()
    sample_loop(model, sampler, (2, 5), progress=True)  # outside a block: the loop's own bar over its steps
    assert bars[0]["shown"] and bars[0]["total"] == 4
