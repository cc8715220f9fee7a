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
