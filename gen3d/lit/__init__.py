"""LightningModules and callbacks: ``lion_module`` (LION, two stages), ``graf_module`` (GRAF), ``ema``,
``callbacks``, ``lion_eval`` (density / ELBO) and ``lion_demo`` (the CPU demonstration).

Nothing is imported here: ``import lightning`` costs seconds, so each module is imported where it is used.
"""
