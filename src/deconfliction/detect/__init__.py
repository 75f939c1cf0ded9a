"""Detection engines (pure): strategic volumes x volumes with its index and SQL cells."""

from deconfliction.detect.cells import CELL_SIZE_DEG, cell_id, cells_covering
from deconfliction.detect.index import VolumeIndex, check
from deconfliction.detect.strategic import (
    Overlap,
    SeparationMinima,
    conflict,
    pairwise_conflicts,
)

__all__ = [
    "CELL_SIZE_DEG",
    "Overlap",
    "SeparationMinima",
    "VolumeIndex",
    "cell_id",
    "cells_covering",
    "check",
    "conflict",
    "pairwise_conflicts",
]
