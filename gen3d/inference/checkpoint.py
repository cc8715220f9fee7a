"""Reading gen3d's Lightning checkpoints safely, and telling which model family wrote one.

Every checkpoint is read with ``torch.load(..., weights_only=True)`` on the CPU: nothing in the file can run code.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor, nn

CKPT_KEY = "gen3d"  # checkpoint entry naming the model family and stage (written by the LION/PVD/flow modules)


def read_checkpoint(path: str | os.PathLike, lightning: bool = True) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with a clear error for missing, unreadable or foreign files.

    Args:
        path: the checkpoint file.
        lightning: require a Lightning checkpoint (``state_dict`` and ``hyper_parameters`` mappings); with
            ``False`` any mapping is accepted (adapters registered by other packages may read their own files).

    Raises:
        InputError: no such file, not a torch file (truncated, corrupt, unsafe pickle), or not what was required.
    """
    import torch

    from gen3d.errors import InputError
    from gen3d.utils import check_exists

    p = check_exists(path, "file")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the file is not usable
        first = next((line for line in str(exc).splitlines() if line.strip()), "empty or truncated file")
        raise InputError(f"cannot read checkpoint ({type(exc).__name__}: {first[:200]})", p) from exc
    if not isinstance(ckpt, dict):
        raise InputError(f"expected a checkpoint dict, found {type(ckpt).__name__}", p)
    if lightning and not (isinstance(ckpt.get("state_dict"), dict) and isinstance(ckpt.get("hyper_parameters"), dict)):
        raise InputError("not a gen3d Lightning checkpoint (no state_dict / hyper_parameters)", p)
    return ckpt


def is_lion_checkpoint(ckpt: dict[str, Any]) -> bool:
    """A checkpoint of the LION module (either stage)."""
    hp, state = ckpt.get("hyper_parameters"), ckpt.get("state_dict")
    if not isinstance(hp, dict) or not isinstance(state, dict):
        return False
    return isinstance(hp.get("config"), dict) and hp.get("stage") in ("vae", "prior") and "norm_mean" in state


def is_flow_checkpoint(ckpt: dict[str, Any]) -> bool:
    """A checkpoint of the point normalizing flow's module (``ckpt["gen3d"]["model"] == "flow"``)."""
    info, hp, state = ckpt.get(CKPT_KEY), ckpt.get("hyper_parameters"), ckpt.get("state_dict")
    if not isinstance(info, dict) or not isinstance(hp, dict) or not isinstance(state, dict):
        return False
    return info.get("model") == "flow" and isinstance(hp.get("config"), dict) and "norm_mean" in state


def is_graf_checkpoint(ckpt: dict[str, Any]) -> bool:
    """A checkpoint of the GRAF module (any of its radiance fields: GRAF, pi-GAN, triplane, voxel)."""
    from gen3d.models.graf.build import FIELDS

    hp, state = ckpt.get("hyper_parameters"), ckpt.get("state_dict")
    if not isinstance(hp, dict) or not isinstance(state, dict):
        return False
    return hp.get("field") in FIELDS and any(str(k).startswith("generator_ema.") for k in state)


def checkpoint_kind(ckpt: dict[str, Any]) -> tuple[str, str]:
    """``(model, stage)`` of a LION/PVD/flow checkpoint: ``("lion", "vae" | "prior")``, ``("pvd", "pvd")`` or
    ``("flow", "flow")`` (the family and stage the module wrote under ``ckpt["gen3d"]``)."""
    info = ckpt.get(CKPT_KEY) or {}
    hp = ckpt.get("hyper_parameters", {})
    model = info.get("model", hp.get("model", "lion"))
    return model, info.get("stage", hp.get("stage", "pvd" if model == "pvd" else "vae"))


RESUME_KEYS = {"epoch": int, "global_step": int, "state_dict": dict, "optimizer_states": list, "loops": dict}


def check_resumable(path: str | os.PathLike, model: str, stage: str | None = None) -> dict[str, Any]:
    """Check that Lightning can resume training ``model`` (``lion``, ``pvd``, ``flow`` or ``graf``) from a checkpoint.

    Args:
        path: the checkpoint file.
        model: the model family being trained.
        stage: for LION, the stage being trained (``vae`` or ``prior``); None accepts either.

    Returns:
        The checkpoint.

    Raises:
        InputError: one line naming the file: unreadable, not gen3d's, of another model or stage, or missing the
            training state (optimizer, loops, step counters) that resuming needs.
    """
    from gen3d.errors import InputError

    ckpt = read_checkpoint(path)
    if model == "graf":
        found = "graf" if is_graf_checkpoint(ckpt) else None
    else:
        found = checkpoint_kind(ckpt)[0] if is_lion_checkpoint(ckpt) or CKPT_KEY in ckpt else None
    if found != model:
        raise InputError(f"not a checkpoint of a gen3d {model} model" + (f" (found {found})" if found else ""), path)
    if model == "lion" and stage is not None and checkpoint_kind(ckpt)[1] != stage:
        raise InputError(
            f"a checkpoint of LION's {checkpoint_kind(ckpt)[1]} stage cannot resume the {stage} stage", path
        )
    for key, kind in RESUME_KEYS.items():
        if not isinstance(ckpt.get(key), kind):
            raise InputError(
                f"cannot resume training: the checkpoint has no {key} ({kind.__name__}), it holds weights only", path
            )
    return ckpt


def prefixed(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of ``state`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def data_statistics(state: dict[str, Any], path: str | os.PathLike, kind: str) -> tuple[Tensor, Tensor]:
    """The training data's ``(norm_mean, norm_std)`` saved in a checkpoint's ``state_dict``, as float32.

    Args:
        state: the checkpoint's ``state_dict``.
        path: the checkpoint, named in errors.
        kind: what the checkpoint should be, named in errors (e.g. ``"flow"``).

    Raises:
        InputError: either tensor is missing.
    """
    import torch

    from gen3d.errors import InputError

    if not all(isinstance(state.get(k), torch.Tensor) for k in ("norm_mean", "norm_std")):
        raise InputError(f"not a {kind} checkpoint (no norm_mean / norm_std data statistics)", path)
    return state["norm_mean"].float(), state["norm_std"].float()


def load_trained_weights(
    net: nn.Module,
    state: dict[str, Any],
    path: str | os.PathLike,
    ema_target: nn.Module | None = None,
    ema_decay: float = 0.999,
) -> None:
    """Load a training module's ``net.*`` weights into ``net``, then its EMA weights (``ema.*``) into ``ema_target``.

    Args:
        net: the rebuilt network.
        state: the checkpoint's ``state_dict``.
        path: the checkpoint, named in errors.
        ema_target: the part of ``net`` the EMA tracked during training, or None to keep the raw weights.
        ema_decay: the EMA's decay (its weights load whatever it is).

    Raises:
        InputError: the weights do not fit the network.
    """
    from gen3d.errors import InputError
    from gen3d.models.ema import EMA

    try:
        net.load_state_dict(prefixed(state, "net."))
        ema_state = prefixed(state, "ema.")
        if ema_target is not None and ema_state:
            ema = EMA(ema_target, ema_decay)
            ema.load_state_dict(ema_state)
            ema.copy_to(ema_target)
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"checkpoint weights do not fit its configuration ({first[:200]})", path) from exc
