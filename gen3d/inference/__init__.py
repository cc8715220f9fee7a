"""Any gen3d checkpoint -> a ready-to-sample object, without training code (no Lightning import).

- :mod:`gen3d.inference.checkpoint`: safe reading (``weights_only=True``) and model-family detection.
- :mod:`gen3d.inference.lion`: :func:`~gen3d.inference.lion.load_lion` (LION and PVD networks, EMA applied).
- :mod:`gen3d.inference.graf`: :func:`~gen3d.inference.graf.load_graf_generator` (GRAF / pi-GAN generators).
- :mod:`gen3d.inference.sources`: the ``SampleSource`` / ``FieldSource`` protocols and the adapter registry that
  the viewer and the exports open checkpoints through (:func:`~gen3d.inference.sources.load_checkpoint_source`).
"""
