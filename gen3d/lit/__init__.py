"""Training with Lightning: ``lion_module`` (LION in two stages, and the PVD baseline), ``graf_module`` (GRAF and
pi-GAN), ``callbacks`` (validation samples, atomic checkpoints) and ``progress`` (the step progress bar). The
DataModules live in :mod:`gen3d.data.datamodules`, the weight averages in :mod:`gen3d.models.ema`.

Nothing is imported here: ``import lightning`` costs seconds, so each module is imported where it is used.
"""

import logging as _logging
import warnings as _warnings


def quiet_known_warnings() -> None:
    """Silence Lightning warnings that say nothing about the user's run.

    - ``isinstance(treespec, LeafSpec)`` is deprecated: raised inside Lightning itself on every fit with
      recent torch.
    - "Found N module(s) in eval mode": the frozen VAE of LION's second stage is in eval mode on purpose.
    - the advertisement for a cloud logging service printed at every fit.
    """
    _warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
    _warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training.*")
    log = _logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdvert) for f in log.filters):
        log.addFilter(_NoAdvert())


class _NoAdvert(_logging.Filter):
    def filter(self, record: _logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()
