"""Choosing the torch device for a command: ``--device`` as a user wrote it, or the best one present."""

from __future__ import annotations

import torch

from gen3d.errors import InputError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The ``torch.device`` for a user's ``--device`` value.

    Args:
        device: a device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``), a ``torch.device``, or ``None`` for CUDA
            when it is available and the CPU otherwise.

    Raises:
        InputError: not a device name, or CUDA was asked for on a machine without it.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"--device: not a torch device: {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    return dev
