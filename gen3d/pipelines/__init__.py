"""End-to-end jobs built on the models, Lightning and the metrics (one module a job).

- :mod:`gen3d.pipelines.demo`, :mod:`~gen3d.pipelines.lion_demo`, :mod:`~gen3d.pipelines.graf_demo`: ``gen3d demo``.
- :mod:`gen3d.pipelines.sample`: sampling a checkpoint to files (``gen3d sample``).
- :mod:`gen3d.pipelines.graf_eval`: FID / KID of a GAN checkpoint (``gen3d evaluate graf``).
- :mod:`gen3d.pipelines.lion_eval`: the negative ELBO of LION's VAE (``gen3d evaluate elbo``).

Nothing is imported here: Lightning and torch cost seconds, so each module is imported where it is used.
"""
