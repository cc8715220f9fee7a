"""gen3d's data layer: procedural shapes, dataset readers, normalisation and point-cloud I/O.

Every public name is imported on first access, so ``import gen3d.data`` loads neither torch nor Lightning
(torch comes with the Dataset classes, Lightning with the DataModules).

Modules:
    shapes       procedural classes, ``build_dataset`` (the ShapeNetCore.v2.PC15k layout)
    sampling     area-weighted surface sampling with a seeded generator
    io           ``load_points`` / ``save_points`` / ``load_point_set`` (.ply .npy .npz)
    normalize    ``GlobalNorm`` (PointFlow), ``normalize_box`` (ShapeNet-vol / LION), ``normalize`` (import it
                 from ``gen3d.data.normalize``: the module of the same name shadows it here)
    pc15k        the PC15k layout (synset ids, reading splits)
    off, meshes  OFF reader tolerant of ModelNet's header quirk, mesh loading with trimesh
    modelnet     the ModelNet40 layout
    datasets     torch Datasets: PC15k, procedural, ModelNet40, mesh folders
    images       image folders for GRAF
    datamodules  Lightning DataModules
    stats        dataset statistics and their table
"""

from __future__ import annotations

from gen3d.utils.lazy import lazy_attributes

_LAZY = {
    # I/O
    "load_points": "gen3d.data.io",
    "save_points": "gen3d.data.io",
    "load_point_set": "gen3d.data.io",
    "check_points": "gen3d.data.io",
    # normalisation
    "GlobalNorm": "gen3d.data.normalize",
    "normalize_box": "gen3d.data.normalize",
    "box_stats": "gen3d.data.normalize",
    # procedural shapes and sampling
    "CLASSES": "gen3d.data.shapes",
    "build_dataset": "gen3d.data.shapes",
    "make_shape": "gen3d.data.shapes",
    "shape_points": "gen3d.data.shapes",
    "generate_split": "gen3d.data.shapes",
    "sample_surface": "gen3d.data.sampling",
    "sample_mesh": "gen3d.data.sampling",
    # readers
    "PointCloudSet": "gen3d.data.pointsets",
    "read_pc15k": "gen3d.data.pc15k",
    "read_off": "gen3d.data.off",
    "parse_off": "gen3d.data.off",
    "load_mesh": "gen3d.data.meshes",
    "list_mesh_files": "gen3d.data.meshes",
    "modelnet_files": "gen3d.data.modelnet",
    "dataset_stats": "gen3d.data.stats",
    # torch Datasets
    "PointCloudDataset": "gen3d.data.datasets",
    "PC15kDataset": "gen3d.data.datasets",
    "ProceduralDataset": "gen3d.data.datasets",
    "ModelNet40Dataset": "gen3d.data.datasets",
    "MeshFolderDataset": "gen3d.data.datasets",
    "ImageFolderDataset": "gen3d.data.images",
    # Lightning
    "PointCloudDataModule": "gen3d.data.datamodules",
    "ImageDataModule": "gen3d.data.datamodules",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
