"""Builds annbatch_c's one C extension on the limited API (an abi3 wheel).

Where libannbatch is found, in order:
  ANNBATCH_INCLUDE / ANNBATCH_LIBDIR  (make sets them to the build tree)
  pkg-config annbatch                  (an installed libannbatch)
The extension is linked with an rpath to that library directory.
"""
import os
import shlex
import subprocess

from setuptools import Extension, setup


def _pkg_config(flag):
    try:
        out = subprocess.run(["pkg-config", flag, "annbatch"], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    return shlex.split(out.stdout)


def _library():
    inc = os.environ.get("ANNBATCH_INCLUDE")
    lib = os.environ.get("ANNBATCH_LIBDIR")
    if inc and lib:
        return [inc], [lib]
    incs = [f[2:] for f in _pkg_config("--cflags-only-I")]
    libs = [f[2:] for f in _pkg_config("--libs-only-L")]
    if not libs and not incs:
        raise SystemExit(
            "annbatch_c: libannbatch not found: set ANNBATCH_INCLUDE and ANNBATCH_LIBDIR, "
            "or install it (make install) so that pkg-config finds annbatch"
        )
    return incs, libs


include_dirs, library_dirs = _library()
here = os.path.dirname(os.path.abspath(__file__))
ext = Extension(
    "annbatch_c._engine",
    sources=[
        os.path.relpath(os.path.join(here, "src", f))
        for f in ("engine.c", "batch.c", "errors.c", "pinned.c", "args.c", "collection.c", "frame.c")
    ],
    depends=[os.path.relpath(os.path.join(here, "src", "binding.h"))],
    include_dirs=include_dirs,
    library_dirs=library_dirs,
    libraries=["annbatch"],
    runtime_library_dirs=library_dirs,
    define_macros=[("Py_LIMITED_API", "0x030B0000")],
    py_limited_api=True,
    # hidden: only PyInit__engine is exported, not the files' shared helpers
    extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-fvisibility=hidden"],
)
setup(packages=["annbatch_c"], ext_modules=[ext], options={"bdist_wheel": {"py_limited_api": "cp311"}})
