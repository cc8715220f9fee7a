"""Small shared helpers: atomic file writes, path checks and file listing, progress bars, seeding."""

from gen3d.utils.fs import atomic_path, atomic_write_bytes, atomic_write_text, check_exists, check_suffix, list_files
from gen3d.utils.progress import progress

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_exists",
    "check_suffix",
    "list_files",
    "progress",
]
