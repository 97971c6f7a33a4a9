"""annbatch_c: shuffled mini-batches of AnnData / zarr stores from libannbatch.

``import annbatch_c as annbatch`` runs code written for the Python annbatch
library: :class:`Loader`, :mod:`samplers` and :class:`DatasetCollection`, with
the same names, defaults and messages; the reading, decoding, shuffling and
batching are libannbatch's (io_uring, O_DIRECT, a worker pool), with the GIL
released, and batches arrive as numpy / scipy / torch (or, through DLPack,
jax) objects over the engine's own memory. DatasetCollection writes
collections with the library's collection writer, as `annbatch convert`.
"""

from . import samplers
from ._engine import (
    AnnbatchError,
    CorruptData,
    FormatError,
    InvalidArgument,
    NotFound,
    OutOfRange,
    ReadError,
    Stalled,
    Unsupported,
    WrongNodeType,
)
from ._engine import version as engine_version
from ._jax import MissingDependency
from .collection import DatasetCollection
from .loader import Epoch, Loader
from .samplers import ClassSampler, DistributedSampler, RandomSampler, SequentialSampler

__version__ = "0.1.0"

__all__ = [
    "Loader",
    "DatasetCollection",
    "Epoch",
    "samplers",
    "RandomSampler",
    "SequentialSampler",
    "DistributedSampler",
    "ClassSampler",
    "AnnbatchError",
    "InvalidArgument",
    "NotFound",
    "ReadError",
    "Stalled",
    "FormatError",
    "Unsupported",
    "CorruptData",
    "OutOfRange",
    "WrongNodeType",
    "MissingDependency",
    "engine_version",
]
