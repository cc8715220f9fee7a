"""Only the known, uninformative Lightning warnings are silenced."""

from __future__ import annotations

import warnings

from gen3d.lit import quiet_known_warnings


def test_known_warnings_are_silenced_and_others_are_not():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", stacklevel=1)
        warnings.warn("Found 169 module(s) in eval mode at the start of training. This may lead to", stacklevel=1)
        warnings.warn("The number of training batches (5) is smaller than the logging interval", stacklevel=1)
    assert [str(w.message)[:30] for w in caught] == ["The number of training batches"]


def test_logging_advert_is_filtered_once(caplog):
    import logging

    quiet_known_warnings()
    quiet_known_warnings()
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert sum(type(f).__name__ == "_NoAdvert" for f in log.filters) == 1
    with caplog.at_level(logging.INFO, logger=log.name):
        log.info("Tip: try installing [litlogger](https://pypi.org/project/litlogger/)")
        log.info("GPU available: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]
