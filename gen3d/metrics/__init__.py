"""Evaluation metrics that compare with the papers: point-cloud distances and generation metrics, FID/KID.

Modules:
    distances    ``chamfer_distance``, ``nn_distances`` (native C++/OpenMP kernel + torch reference)
    earth_mover  ``emd`` (exact: POT, else SciPy; approx: native auction solver), ``emd_exact``, ``emd_approx``
    pairwise     ``pairwise_distances`` between two sets of clouds
    emd_bounds   ``sliced_features``, ``lower_bounds``: cheap lower bounds of the EMD between clouds
    nearest      ``emd_nearest``: nearest neighbours under the EMD without the full matrices (used by the metrics)
    point_cloud  ``point_cloud_metrics`` (MMD, COV, 1-NNA under CD/EMD, JSD), ``mmd_cov``, ``one_nn_accuracy``,
                 ``ReferenceDistances`` (one reference set scored against several sets)
    fid          ``fid_kid``, ``frechet_distance``, ``kernel_inception_distance``, ``feature_statistics``
    point_fid    ``point_fid`` (P-FID / P-KID of point clouds on fixed renders), ``render_views``
    inception_score  ``inception_score``, ``inception_score_from_logits``, ``image_inception_score``,
                 ``InceptionClassifier``
    shape_classifier  ``train_shape_classifier``, ``load_or_train_classifier``, ``ShapeClassifier`` (a PointNet or
                 render-CNN trained on the procedural classes), ``class_scores`` (class IS, class coverage)

Importing this package compiles nothing: the native extension is built on first use (see
:mod:`gen3d.metrics._native`). The FID module is imported on first access to one of its public names
(``gen3d.metrics.fid_kid``, ...; the names are those of ``gen3d.metrics.fid.__all__``). The Inception Score functions
are imported here (binding ``gen3d.metrics.inception_score`` to the function, not the module), and so are
``point_fid`` and ``render_views`` (``gen3d.metrics.point_fid`` is the function; it loads the FID module when called)
and the shape classifier's public names (the procedural shapes are imported when a classifier is trained).
"""

from __future__ import annotations

import importlib
from typing import Any

from gen3d.metrics.distances import chamfer_distance, nn_distances, nn_distances_ref
from gen3d.metrics.earth_mover import APPROX_REL_EPS, emd, emd_approx, emd_exact
from gen3d.metrics.inception_score import (
    InceptionClassifier,
    image_inception_score,
    inception_score,
    inception_score_from_logits,
)
from gen3d.metrics.pairwise import pairwise_distances
from gen3d.metrics.point_cloud import (
    KEYS,
    PAPER_SCALES,
    ReferenceDistances,
    distance_matrices,
    format_point_cloud_metrics,
    jsd_between_point_cloud_sets,
    mmd_cov,
    one_nn_accuracy,
    paper_units,
    point_cloud_metrics,
)
from gen3d.metrics.point_fid import point_fid, render_views
from gen3d.metrics.shape_classifier import (
    PointNetClassifier,
    RenderCNNClassifier,
    ShapeClassifier,
    class_scores,
    load_or_train_classifier,
    train_shape_classifier,
)

__all__ = [
    "APPROX_REL_EPS",
    "KEYS",
    "PAPER_SCALES",
    "PointNetClassifier",
    "ReferenceDistances",
    "RenderCNNClassifier",
    "ShapeClassifier",
    "chamfer_distance",
    "class_scores",
    "distance_matrices",
    "emd",
    "emd_approx",
    "emd_exact",
    "InceptionClassifier",
    "image_inception_score",
    "inception_score",
    "inception_score_from_logits",
    "format_point_cloud_metrics",
    "jsd_between_point_cloud_sets",
    "load_or_train_classifier",
    "mmd_cov",
    "nn_distances",
    "nn_distances_ref",
    "one_nn_accuracy",
    "pairwise_distances",
    "paper_units",
    "point_cloud_metrics",
    "point_fid",
    "render_views",
    "train_shape_classifier",
]


def __getattr__(name: str) -> Any:
    fid = importlib.import_module("gen3d.metrics.fid")
    if name in fid.__all__:
        return getattr(fid, name)
    raise AttributeError(f"module 'gen3d.metrics' has no attribute {name!r}")
