"""Training graphs hold no CPU operation whose result depends on thread timing.

On the CPU, ``index_put_(accumulate=True)`` (the backward of gathering rows with a tensor index, ``x[idx]``) and
``put_(accumulate=True)`` add with atomics from several threads once a tensor has 32768 elements or more, so two runs
of the same seed can differ in the last bits and then drift apart (PyTorch's ``use_deterministic_algorithms`` lists
both). Every family's training step is run here under a dispatch mode that records such calls, and must make none.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tests.conftest import TINY_FLOW, TINY_GRAF, TINY_TRIPLANE

ACCUMULATING = {"index_put", "index_put_", "_index_put_impl_", "put", "put_"}


class _Accumulations(TorchDispatchMode):
    """Records the accumulating index writes (``accumulate=True``) dispatched inside the mode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in ACCUMULATING and kwargs.get("accumulate", len(args) > 3 and args[3]):  # (self, indices, values, acc)
            self.calls.append(f"{name} into {tuple(args[0].shape)}")
        return func(*args, **kwargs)


def test_the_recorder_sees_a_gather_backward():
    """The recorder itself: the backward of ``x[idx]`` is an accumulating ``index_put``, of ``index_select`` not."""
    x = torch.randn(4, 3, requires_grad=True)
    idx = torch.tensor([0, 1, 1, 3])
    with _Accumulations() as rec:
        x[idx].sum().backward()
    assert len(rec.calls) == 1 and "index_put" in rec.calls[0]
    with _Accumulations() as rec:
        x.index_select(0, idx).sum().backward()
    assert rec.calls == []


def _fit_recorded(module, datamodule, make_trainer, steps: int) -> list[str]:
    trainer = make_trainer(max_steps=steps, enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0)
    with _Accumulations() as rec:
        trainer.fit(module, datamodule=datamodule)
    return rec.calls


GRAF_FIELDS = {
    "graf": TINY_GRAF,
    "pigan": {**TINY_GRAF, "field": "pigan"},
    "pigan marched": {**TINY_GRAF, "field": "pigan", "sampler": "marched", "grid_resolution": 4},
    "triplane": TINY_TRIPLANE,
    "triplane colour code": {**TINY_TRIPLANE, "colour_code": True},
    "voxel": {**TINY_TRIPLANE, "field": "voxel"},
}


@pytest.mark.parametrize("field", list(GRAF_FIELDS))
def test_gan_training_steps_accumulate_without_atomics(field, tmp_path, make_trainer):
    from gen3d.data.datamodules import GRAFDataModule
    from gen3d.lit.graf_module import GRAFModule

    data = GRAFDataModule(
        str(tmp_path / "imgs"), "shapes", 16, batch_size=4, num_workers=0, classes="mug,chair", per_class=2, views=2
    )
    module = GRAFModule(**GRAF_FIELDS[field])
    assert _fit_recorded(module, data, make_trainer, steps=4) == []


@pytest.mark.parametrize("stage", ["vae", "prior", "pvd"])
def test_point_diffusion_training_steps_accumulate_without_atomics(stage, tiny_config, datamodule, make_trainer):
    from gen3d.lit.lion_module import LionModule, PVDModule

    cfg = copy.deepcopy(tiny_config)
    module = PVDModule(config=cfg) if stage == "pvd" else LionModule(config=cfg, stage=stage)
    assert _fit_recorded(module, datamodule, make_trainer, steps=2) == []


def test_flow_training_steps_accumulate_without_atomics(datamodule, make_trainer):
    from gen3d.lit.flow_module import FlowModule

    assert _fit_recorded(FlowModule(config=dict(TINY_FLOW)), datamodule, make_trainer, steps=2) == []
