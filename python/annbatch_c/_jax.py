"""X as jax arrays (``Loader(to_jax=True)``), imported through DLPack from
the engine's batch memory.

The numpy arrays over a batch are DLPack producers (they are writable, which
numpy requires to export them): ``jax.dlpack.from_dlpack`` takes them, and
the DLPack tensor jax keeps holds the numpy array, hence the batch, for as
long as the jax array lives, after the Loader is gone too. The batch goes
back to the engine when the last jax array made from it dies.

What a machine with jax gets: dense X as a ``jax.Array``, sparse X as a
``jax.experimental.sparse.BCSR`` over the batch's values, int32 column
indices and int32 indptr (the engine assembles an int32 indptr for it), all
on jax's CPU device; ``jax.device_put`` moves them to an accelerator. jax
shares the memory where its CPU client accepts the buffer's alignment, and
copies it otherwise. jax arrays are immutable: nothing writes into a batch
while jax holds it.
"""

from __future__ import annotations

from importlib.util import find_spec

__all__ = ["MissingDependency", "require", "dense", "csr"]


class MissingDependency(ImportError, ValueError):
    """An output asked for needs a package this Python cannot import: an
    ImportError (what is missing) and a ValueError (the argument that asks
    for it cannot be honoured here)."""


def _message(why: str) -> str:
    return f"to_jax=True needs jax, which {why} here. Try `pip install jax`, or leave to_jax=False."


def require() -> None:
    """Raises :class:`MissingDependency` unless jax can be found (checked when
    the Loader is made, as annbatch checks torch for ``to_torch``)."""
    if find_spec("jax") is None:
        raise MissingDependency(_message("is not installed"), name="jax")


_modules: tuple | None = None


def _jax() -> tuple:
    """(jax.dlpack, jax.experimental.sparse), imported once."""
    global _modules
    if _modules is None:
        try:
            import jax.dlpack
            from jax.experimental import sparse
        except ImportError as e:
            raise MissingDependency(_message(f"fails to import ({e})"), name="jax") from e
        _modules = (jax.dlpack, sparse)
    return _modules


def dense(values):
    """A jax array over a dense batch's values (numpy, from the engine)."""
    dlpack, _ = _jax()
    return dlpack.from_dlpack(values)


def csr(values, indices, indptr, shape: tuple[int, int]):
    """A BCSR matrix over a sparse batch's values, indices and indptr."""
    dlpack, sparse = _jax()
    parts = (dlpack.from_dlpack(values), dlpack.from_dlpack(indices), dlpack.from_dlpack(indptr))
    return sparse.BCSR(parts, shape=shape)
