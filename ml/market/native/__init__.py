"""Build and load the C order-book engine (``cobgrid.c``) with ctypes.

The shared library (``cobgrid.c``, which includes ``book.c``, ``frames.c`` and ``stream.c``) is
compiled on first use with the system C compiler (``$CC``, default ``gcc``; flags ``-O2 -shared
-fPIC``) into ``$GOGO_NATIVE_DIR`` (default ``<repo>/var/native``), under a name that carries the
sources' SHA-256, so editing a C file rebuilds it and concurrent builds never see a half-written
file (compiled to a temporary name, then renamed). ``python -m ml.market.native`` builds it ahead
of time (an install step or a container image); a fresh machine needs only gcc.

Raises :class:`NativeBuildError` when no compiler is available or the compile fails.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from ctypes import POINTER, c_char_p, c_double, c_int, c_int64, c_void_p
from pathlib import Path

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cobgrid.c")  # includes book.c, frames.c, stream.c (one unit)
CFLAGS = ("-O2", "-shared", "-fPIC", "-std=gnu11")


class NativeBuildError(RuntimeError):
    """The C engine could not be compiled or loaded (the message says why)."""


def native_dir() -> Path:
    """Where compiled libraries are cached: ``$GOGO_NATIVE_DIR`` or ``<repo>/var/native``."""
    env = os.environ.get("GOGO_NATIVE_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "var" / "native"


def build(force: bool = False) -> Path:
    """Compile ``cobgrid.c`` if its cached library is missing; returns the library path."""
    sources = sorted(SOURCE.parent.glob("*.[ch]"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources) + " ".join(CFLAGS).encode()).hexdigest()[:16]
    target = native_dir() / f"cobgrid-{digest}.so"
    if target.is_file() and not force:
        return target
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise NativeBuildError(f"C compiler {cc!r} not found: install gcc (apt-get install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [cc, *CFLAGS, "-o", tmp, str(SOURCE), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        os.unlink(tmp)
        raise NativeBuildError(f"compiling {SOURCE.name} failed ({' '.join(cmd)}):\n{proc.stderr}")
    os.replace(tmp, target)
    logger.info("built %s", target)
    return target


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p_i64, p_i = POINTER(c_int64), POINTER(c_int)
    sig = {
        "cg_new": (c_void_p, [c_int, c_int64, c_double, c_int, c_int, p_i, c_int]),
        "cg_free": (None, [c_void_p]),
        "cg_copy": (c_void_p, [c_void_p]),
        "cg_clear": (None, [c_void_p]),
        "cg_begin_snapshot": (None, [c_void_p, c_int64]),
        "cg_set_levels": (c_int64, [c_void_p, c_int, c_void_p, c_int64]),
        "cg_apply_update": (c_int64, [c_void_p, c_void_p, c_int64, c_void_p, c_int64]),
        "cg_best_price": (c_double, [c_void_p, c_int]),
        "cg_depth": (c_int64, [c_void_p, c_int]),
        "cg_size": (c_double, [c_void_p, c_int, c_double]),
        "cg_levels": (c_int64, [c_void_p, c_int, c_void_p, c_void_p, c_int64, p_i64]),
        "cg_is_crossed": (c_int, [c_void_p]),
        "cg_stats": (p_i64, [c_void_p]),
        "cg_base": (c_int64, [c_void_p]),
        "cg_last_id": (c_int64, [c_void_p]),
        "cg_synced": (c_int, [c_void_p]),
        "cg_msg_E": (c_int64, [c_void_p]),
        "cg_set_synced": (None, [c_void_p, c_int64]),
        "cg_set_unsynced": (None, [c_void_p]),
        "cg_frame_buckets": (c_int, [c_void_p, c_double, c_int, c_void_p, c_void_p, c_void_p]),
        "cg_frame_mas": (None, [c_void_p, c_void_p, c_void_p, c_double, c_void_p, c_void_p, c_void_p, c_void_p]),
        "cg_reset_mas": (None, [c_void_p]),
        "cg_feed": (c_int, [c_void_p, c_char_p, c_int64]),
        "cg_run": (c_int64, [c_void_p, c_char_p, c_void_p, c_int64, c_int, c_int, p_i64, c_int64, p_i64, c_void_p,
                             c_void_p, c_void_p, c_void_p, c_void_p, c_void_p, p_i]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


_LIB: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The loaded engine (built on first call). Raises NativeBuildError."""
    global _LIB
    if _LIB is None:
        path = build()
        try:
            _LIB = _declare(ctypes.CDLL(str(path)))
        except OSError as exc:
            raise NativeBuildError(f"cannot load {path}: {exc}") from exc
    return _LIB
