"""Compiling `conv.cc` into the cache: `gan-jax onednn build`.

The library's name carries a key of the source, jaxlib's version and the installed oneDNN's
version, so an upgrade of any of them needs a new build (and the old one is never loaded).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

import jaxlib

from gan_jax.errors import UserError

SOURCE = pathlib.Path(__file__).with_name("conv.cc")
INSTALL = "apt-get install g++ libdnnl-dev"


def cache_dir() -> pathlib.Path:
    """Where built libraries go: `$GAN_JAX_ONEDNN_DIR`, else `~/.cache/gan_jax/onednn`."""
    default = pathlib.Path.home() / ".cache" / "gan_jax" / "onednn"
    return pathlib.Path(os.environ.get("GAN_JAX_ONEDNN_DIR") or default)


def onednn_root() -> pathlib.Path | None:
    """`$GAN_JAX_ONEDNN_ROOT`: a oneDNN installed under a prefix (`include/`, `lib/`), else None
    (the system's)."""
    root = os.environ.get("GAN_JAX_ONEDNN_ROOT")
    return pathlib.Path(root) if root else None


def _runtime_library() -> str | None:
    root = onednn_root()
    if root is not None:
        found = sorted((root / "lib").glob("libdnnl.so*"))
        return str(found[0]) if found else None
    return ctypes.util.find_library("dnnl")


class _Version(ctypes.Structure):
    _fields_ = [
        ("major", ctypes.c_int),
        ("minor", ctypes.c_int),
        ("patch", ctypes.c_int),
        ("hash", ctypes.c_char_p),
    ]


def onednn_version() -> str | None:
    """The installed oneDNN's version (`"2.6.3"`), None when none is installed."""
    name = _runtime_library()
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)
    except OSError:
        return None
    library.dnnl_version.restype = ctypes.POINTER(_Version)
    v = library.dnnl_version().contents
    return f"{v.major}.{v.minor}.{v.patch}"


def library_path() -> pathlib.Path | None:
    """The library this source, jaxlib and oneDNN build to; None when no oneDNN is installed."""
    version = onednn_version()
    if version is None:
        return None
    key = hashlib.sha256(SOURCE.read_bytes())
    key.update(f"jaxlib {jaxlib.__version__} onednn {version}".encode())
    return cache_dir() / f"conv-{key.hexdigest()[:16]}.so"


def problem() -> str:
    """Why the library cannot be used, and the fix, as one clause."""
    if onednn_version() is None:
        return f"no oneDNN is installed; run `{INSTALL}`, then `gan-jax onednn build`"
    return (
        "the oneDNN convolutions are not built for this oneDNN and jaxlib; "
        "run `gan-jax onednn build`"
    )


def compile_command(output: pathlib.Path) -> list[str]:
    """The compiler command line that builds the library into `output`."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise UserError(f"no C++ compiler found; run `{INSTALL}` (or set CXX)")
    command = [compiler, "-O3", "-std=c++17", "-shared", "-fPIC", "-w"]
    command += ["-isystem", str(pathlib.Path(jaxlib.__file__).parent / "include")]
    root = onednn_root()
    if root is not None:
        command += ["-isystem", str(root / "include"), f"-L{root / 'lib'}"]
        command += [f"-Wl,-rpath,{root / 'lib'}"]
    return [*command, str(SOURCE), "-o", str(output), "-ldnnl"]


def build(force: bool = False) -> pathlib.Path:
    """Compiles the library into the cache (unless it is there and not `force`); returns its path.
    Raises UserError with the install command when oneDNN or a compiler is missing."""
    path = library_path()
    if path is None:
        raise UserError(problem())
    if path.exists() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        partial = pathlib.Path(scratch) / path.name
        result = subprocess.run(compile_command(partial), capture_output=True, text=True)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or ["(no output)"]
            detail = next((line for line in lines if "error" in line), lines[-1])
            raise UserError(
                f"building the oneDNN convolutions failed ({detail}); is `libdnnl-dev` "
                f"installed (`{INSTALL}`)?"
            )
        os.replace(partial, path)  # atomic: a concurrent loader never sees half a library
    return path
