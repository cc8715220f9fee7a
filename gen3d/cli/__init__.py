"""The ``gen3d`` command line. Each subcommand lives in its own module here, exposing
``register(subparsers)``; modules import only the standard library at top level so that
``gen3d --help`` stays fast, and import torch/lightning inside their ``run`` functions."""
