"""Samplers: which rows each batch holds, as configurations of the C sampler.

The classes carry annbatch's names and arguments; they do not draw anything
in Python. The engine draws (its own deterministic streams keyed by seed,
epoch and rank), so for the same arguments the set of rows of an epoch is
the same as annbatch's, but the order differs. A numpy ``rng`` only seeds
the engine: one integer is drawn from it when the sampler is made.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import numpy as np

__all__ = ["Sampler", "RandomSampler", "SequentialSampler", "DistributedSampler", "ClassSampler"]


def _check_lt_1(values, names):
    for v, n in zip(values, names):
        if v < 1:
            raise ValueError(f"{n} must be greater than 1, got {v}")


def _check_sizes(chunk_size: int, preload_nchunks: int, batch_size: int) -> None:
    for name, v in (("chunk_size", chunk_size), ("preload_nchunks", preload_nchunks), ("batch_size", batch_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    _check_lt_1([chunk_size, preload_nchunks], ["Chunk size", "Preloaded chunks"])
    _check_lt_1([batch_size], ["Batch size"])
    preload_size = chunk_size * preload_nchunks
    if batch_size > preload_size:
        raise ValueError(
            "batch_size cannot exceed chunk_size * preload_nchunks. "
            f"Got batch_size={batch_size}, but max is {preload_size}."
        )
    if preload_size % batch_size != 0:
        raise ValueError(
            "chunk_size * preload_nchunks must be divisible by batch_size. "
            f"Got {preload_size} % {batch_size} = {preload_size % batch_size}."
        )


def _check_mask(mask: slice | None) -> tuple[int, int | None]:
    if mask is None:
        return 0, None
    if not isinstance(mask, slice):
        raise TypeError(f"mask must be a slice, got {type(mask).__name__}")
    if mask.step is not None and mask.step != 1:
        raise ValueError(f"mask.step must be 1, but got {mask.step}")
    start, stop = mask.start or 0, mask.stop
    if start < 0:
        raise ValueError("mask.start must be >= 0")
    if stop is not None and start >= stop:
        raise ValueError("mask.start must be < mask.stop when mask.stop is specified")
    return int(start), None if stop is None else int(stop)


def seed_from(rng: np.random.Generator | int | None) -> int | None:
    """The engine seed for a numpy Generator (one draw from it), an int, or None."""
    if rng is None:
        return None
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"seed must be >= 0, got {rng}")
        return int(rng)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63 - 1))
    raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


class Sampler:
    """Base of the samplers: a set of engine settings (``engine_config()``)."""

    batch_size: int
    shuffle: bool

    def engine_config(self) -> dict:
        raise NotImplementedError

    def n_iters(self, n_obs: int) -> int:
        """Batches of one epoch over ``n_obs`` rows, as annbatch counts them."""
        raise NotImplementedError

    def validate(self, n_obs: int) -> None:
        """Raises ValueError where the sampler cannot serve ``n_obs`` rows."""


class _ChunkSampler(Sampler):
    def __init__(
        self,
        chunk_size: int,
        preload_nchunks: int,
        batch_size: int,
        *,
        shuffle: bool,
        replacement: bool = False,
        num_samples: int | None = None,
        drop_last: bool = False,
        mask: slice | None = None,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ):
        if num_samples is not None:
            _check_lt_1([num_samples], ["num_samples"])
        self._mask = _check_mask(mask)
        _check_sizes(chunk_size, preload_nchunks, batch_size)
        self.chunk_size = int(chunk_size)
        self.preload_nchunks = int(preload_nchunks)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.replacement = bool(replacement)
        self.num_samples = None if num_samples is None else int(num_samples)
        self.drop_last = bool(drop_last)
        if seed is not None and rng is not None:
            raise ValueError("give rng or seed, not both")
        self.seed = seed_from(rng if rng is not None else seed)
        if self.seed is None:
            # annbatch defaults to a fresh generator: a random order each run
            self.seed = int(np.random.default_rng().integers(0, 2**63 - 1)) if self.shuffle else 0

    @property
    def mask(self) -> slice:
        return slice(self._mask[0], self._mask[1])

    def _range(self, n_obs: int) -> tuple[int, int]:
        start, stop = self._mask
        return start, n_obs if stop is None else stop

    def n_iters(self, n_obs: int) -> int:
        start, stop = self._range(n_obs)
        total = self.num_samples or (stop - start)
        return total // self.batch_size if self.drop_last else math.ceil(total / self.batch_size)

    def validate(self, n_obs: int) -> None:
        start, stop = self._range(n_obs)
        if stop > n_obs:
            raise ValueError(
                f"Sampler mask.stop ({stop}) exceeds loader n_obs ({n_obs}). "
                "The sampler range must be within the loader's observations."
            )
        if start >= stop:
            raise ValueError(f"Sampler mask.start ({start}) must be < mask.stop ({stop}).")
        if self.replacement and stop - start < self.chunk_size:
            raise ValueError(
                f"Observation range ({stop - start}) is smaller than chunk_size ({self.chunk_size}). "
                "Reduce chunk_size or expand the mask range."
            )

    def engine_config(self) -> dict:
        start, stop = self._mask
        return {
            "chunk_size": self.chunk_size,
            "preload_nchunks": self.preload_nchunks,
            "batch_size": self.batch_size,
            "shuffle": int(self.shuffle),
            "drop_last": int(self.drop_last),
            "replacement": int(self.replacement),
            "num_samples": self.num_samples or 0,
            "mask_start": start,
            "mask_stop": stop or 0,
            "seed": self.seed,
            # annbatch reads no environment: one process is rank 0 of 1
            # unless a DistributedSampler says otherwise
            "rank": 0,
            "world_size": 1,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(chunk_size={self.chunk_size}, preload_nchunks={self.preload_nchunks}, "
            f"batch_size={self.batch_size}, drop_last={self.drop_last}, mask={self.mask})"
        )


class RandomSampler(_ChunkSampler):
    """Chunks of ``chunk_size`` rows in random order, ``preload_nchunks`` at a
    time, their rows shuffled in memory and cut into batches (annbatch's
    RandomSampler). ``replacement`` draws chunk starts with replacement;
    ``num_samples`` sets the rows of a pass; ``mask`` restricts the rows.

    Differs from annbatch: the order comes from the engine's streams keyed by
    ``seed`` (or one draw from ``rng``) and the epoch, so it is reproducible
    across runs, thread counts and I/O modes, but not annbatch's order.
    """

    def __init__(
        self,
        chunk_size: int,
        preload_nchunks: int,
        batch_size: int,
        *,
        replacement: bool = False,
        num_samples: int | None = None,
        drop_last: bool = False,
        mask: slice | None = None,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ):
        super().__init__(
            chunk_size,
            preload_nchunks,
            batch_size,
            shuffle=True,
            replacement=replacement,
            num_samples=num_samples,
            drop_last=drop_last,
            mask=mask,
            rng=rng,
            seed=seed,
        )


class SequentialSampler(_ChunkSampler):
    """Rows in order, ``chunk_size * preload_nchunks`` at a time, cut into
    batches (annbatch's SequentialSampler)."""

    def __init__(
        self,
        chunk_size: int,
        preload_nchunks: int,
        batch_size: int,
        *,
        drop_last: bool = False,
        mask: slice | None = None,
        num_samples: int | None = None,
    ):
        super().__init__(
            chunk_size,
            preload_nchunks,
            batch_size,
            shuffle=False,
            drop_last=drop_last,
            mask=mask,
            num_samples=num_samples,
        )


def _dist_info_torch() -> tuple[int, int]:
    import torch.distributed as dist

    if not dist.is_initialized():
        raise RuntimeError(
            "torch.distributed is not initialized. "
            "Initialize it before creating a DistributedSampler with dist_info='torch'."
        )
    return dist.get_rank(), dist.get_world_size()


def _dist_info_jax() -> tuple[int, int]:
    import jax

    return jax.process_index(), jax.process_count()


_DIST_BACKENDS: dict[str, Callable[[], tuple[int, int]]] = {"torch": _dist_info_torch, "jax": _dist_info_jax}


class DistributedSampler(Sampler):
    """Gives each of ``world_size`` processes its own disjoint share of the
    rows of ``sampler`` (annbatch's DistributedSampler). ``dist_info`` is
    ``"torch"`` (an initialised torch.distributed), ``"jax"``, or a callable
    returning ``(rank, world_size)``.

    The shares are the engine's: each rank gets a contiguous, equal slice of
    the chunk list every epoch, and all ranks yield the same number of
    batches (``enforce_equal_batches`` is accepted for annbatch's signature;
    the engine always gives equal shares).
    """

    def __init__(
        self,
        sampler: Sampler,
        *,
        dist_info: Literal["torch", "jax"] | Callable[[], tuple[int, int]],
        enforce_equal_batches: bool = True,
    ):
        if not isinstance(sampler, _ChunkSampler):
            raise TypeError(f"DistributedSampler wraps a RandomSampler or SequentialSampler, got {type(sampler).__name__}")
        if callable(dist_info):
            rank, world = dist_info()
        elif dist_info in _DIST_BACKENDS:
            rank, world = _DIST_BACKENDS[dist_info]()
        else:
            raise ValueError(f"Unknown dist_info {dist_info!r}. Supported backends: {sorted(_DIST_BACKENDS)}")
        rank, world = int(rank), int(world)
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank {rank} and world_size {world}: need 0 <= rank < world_size")
        self._sampler = sampler
        self.rank, self.world_size = rank, world
        self.enforce_equal_batches = enforce_equal_batches

    @property
    def batch_size(self) -> int:
        return self._sampler.batch_size

    @property
    def shuffle(self) -> bool:
        return self._sampler.shuffle

    def n_iters(self, n_obs: int) -> int:
        # the engine counts a rank's batches itself (Loader.__len__ asks it)
        return self._sampler.n_iters(n_obs) // self.world_size

    def validate(self, n_obs: int) -> None:
        self._sampler.validate(n_obs)

    def engine_config(self) -> dict:
        cfg = self._sampler.engine_config()
        cfg["rank"] = self.rank
        cfg["world_size"] = self.world_size
        return cfg


class ClassSampler(Sampler):
    """Every batch from one class (annbatch's ClassSampler): a class is drawn
    with probability proportional to its weight, then a chunk of it; with
    replacement, ``num_samples`` rows a pass.

    ``classes`` is a pandas Categorical with one entry per row, or the name of
    a categorical obs column on disk (read by the engine). The data must be
    grouped by class (``annbatch convert --groupby``): a run of a class shorter
    than ``chunk_size`` is refused, naming it. A weight of 0 excludes a class.
    """

    def __init__(
        self,
        chunk_size: int,
        preload_nchunks: int,
        batch_size: int,
        *,
        classes,
        num_samples: int,
        class_weights=None,
        mask: slice | None = None,
        drop_last: bool = False,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ):
        _check_lt_1([num_samples], ["num_samples"])
        _check_sizes(chunk_size, preload_nchunks, batch_size)
        self._base = _ChunkSampler(
            chunk_size,
            preload_nchunks,
            batch_size,
            shuffle=True,
            num_samples=num_samples,
            drop_last=drop_last,
            mask=mask,
            rng=rng,
            seed=seed,
        )
        import pandas as pd

        if isinstance(classes, str):
            self.column, self.codes, self.labels = classes, None, None
        elif isinstance(classes, pd.Categorical):
            codes = np.asarray(classes.codes)
            if (codes == -1).any():
                raise ValueError("classes contains NA values (codes == -1). Remove NAs before passing.")
            self.column, self.codes, self.labels = None, codes.astype(np.int32), list(map(str, classes.categories))
        else:
            raise TypeError(f"classes must be a pandas.Categorical, got {type(classes).__name__}.")
        if class_weights is not None:
            w = np.asarray(class_weights, dtype=float)
            if self.labels is not None and w.shape != (len(self.labels),):
                raise ValueError(
                    "class_weights must have one weight per class in classes.categories "
                    f"(expected shape ({len(self.labels)},), got {w.shape})."
                )
            if not (w > 0).any():
                raise ValueError("class_weights must have at least one positive weight.")
            self.class_weights = [float(x) for x in w]
        else:
            self.class_weights = None
        self.batch_size = self._base.batch_size
        self.shuffle = True

    def n_iters(self, n_obs: int) -> int:
        n = self._base.num_samples
        return n // self.batch_size if self._base.drop_last else math.ceil(n / self.batch_size)

    def validate(self, n_obs: int) -> None:
        if self.codes is not None and len(self.codes) != n_obs:
            raise ValueError(
                f"classes length ({len(self.codes)}) does not match loader n_obs ({n_obs}). "
                "The classes column must describe exactly the loader's observations."
            )
        self._base.validate(n_obs)

    def engine_config(self) -> dict:
        cfg = self._base.engine_config()
        cfg["replacement"] = 0
        return cfg
