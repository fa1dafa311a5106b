"""mmcv's compiled ops for mmdetection on top of mmcv-lite: a stand-in ``mmcv._ext`` and the three
CPU kernels detspec needs, built once from the sources mmcv-lite ships.

**The stand-in.** mmcv-lite 2.1.0 has the Python wrappers of ``mmcv.ops`` but no compiled
``mmcv._ext``; every ``mmcv/ops/*.py`` calls ``ext_loader.load_ext('_ext', [names])`` at import
time (mmcv/utils/ext_loader.py:12-16: ``import_module('mmcv._ext')`` and ``assert hasattr`` for each
name), and dozens of ``mmdet.models`` modules import ``mmcv.ops``, so nothing in ``mmdet.models``
imports. :func:`install_stand_in` puts an :class:`ExtStandIn` in ``sys.modules['mmcv._ext']``
(no installed file is touched): every attribute exists; a kernel the compiled module provides is
forwarded to it, any other raises ``NotImplementedError`` when called. The wrappers keep the
stand-in object and look kernels up on each call, so kernels can be attached at any time. A real
``mmcv._ext`` (full mmcv installed) is used as it is.

**The kernels.** ``nms``, ``roi_align`` and ``bbox_overlaps`` CPU kernels are compiled from
``site-packages/mmcv/ops/csrc`` (the same tree as the mmcv 2.1.0 sdist) with a small pybind glue
in place of mmcv's ``pybind.cpp`` (which binds every op), through
``torch.utils.cpp_extension.load`` (ninja, ``-O2``), into ``<venv>/detspec-mmcv-ops``. A stamp
(torch version + source digest) says when the cached library is still good; later processes
load it in milliseconds without a compiler. A file lock keeps two processes from building at
once. If anything fails (no compiler, no ninja, another mmcv), :func:`load_kernels` returns
``None`` and says why in :data:`STATE`: the adapter then does not provide the operations that
need the kernels.

``DETSPEC_MMCV_OPS``: ``build`` (default: load, building if needed), ``cached`` (load only what
is already built), ``off`` (no kernels).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

EXT_NAME = "mmcv._ext"
MODULE = "detspec_mmcv_ext_cpu"
MMCV_VERSION = "2.1.0"
CACHE_DIR = Path(sys.prefix) / "detspec-mmcv-ops"
MODE_VARIABLE = "DETSPEC_MMCV_OPS"

#: csrc-relative source -> file name in the build (unique basenames: ninja names objects after
#: them, and pytorch/nms.cpp and pytorch/cpu/nms.cpp would collide)
SOURCES = {
    "pytorch/nms.cpp": "nms.cpp",
    "pytorch/roi_align.cpp": "roi_align.cpp",
    "pytorch/bbox_overlaps.cpp": "bbox_overlaps.cpp",
    "pytorch/cpu/nms.cpp": "cpu_nms.cpp",
    "pytorch/cpu/roi_align.cpp": "cpu_roi_align.cpp",
    "pytorch/cpu/bbox_overlaps_cpu.cpp": "cpu_bbox_overlaps.cpp",
}
HEADERS = {
    "common/pytorch_cpp_helper.hpp": "pytorch_cpp_helper.hpp",
    "common/pytorch_device_registry.hpp": "pytorch_device_registry.hpp",
}

#: Declarations and bindings as in mmcv/ops/csrc/pytorch/pybind.cpp (the Python wrappers call the
#: kernels with these keyword names), for the three kernels only.
GLUE = r"""
#include <torch/extension.h>

#include "pytorch_cpp_helper.hpp"

Tensor nms(Tensor boxes, Tensor scores, float iou_threshold, int offset);
Tensor softnms(Tensor boxes, Tensor scores, Tensor dets, float iou_threshold,
               float sigma, float min_score, int method, int offset);
std::vector<std::vector<int>> nms_match(Tensor dets, float iou_threshold);
void roi_align_forward(Tensor input, Tensor rois, Tensor output,
                       Tensor argmax_y, Tensor argmax_x, int aligned_height,
                       int aligned_width, float spatial_scale,
                       int sampling_ratio, int pool_mode, bool aligned);
void roi_align_backward(Tensor grad_output, Tensor rois, Tensor argmax_y,
                        Tensor argmax_x, Tensor grad_input, int aligned_height,
                        int aligned_width, float spatial_scale,
                        int sampling_ratio, int pool_mode, bool aligned);
void bbox_overlaps(const Tensor bboxes1, const Tensor bboxes2, Tensor ious,
                   const int mode, const bool aligned, const int offset);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("nms", &nms, "nms (CPU)", py::arg("boxes"), py::arg("scores"),
        py::arg("iou_threshold"), py::arg("offset"));
  m.def("softnms", &softnms, "softnms (CPU)", py::arg("boxes"),
        py::arg("scores"), py::arg("dets"), py::arg("iou_threshold"),
        py::arg("sigma"), py::arg("min_score"), py::arg("method"),
        py::arg("offset"));
  m.def("nms_match", &nms_match, "nms_match (CPU)", py::arg("dets"),
        py::arg("iou_threshold"));
  m.def("roi_align_forward", &roi_align_forward, "roi_align forward (CPU)",
        py::arg("input"), py::arg("rois"), py::arg("output"),
        py::arg("argmax_y"), py::arg("argmax_x"), py::arg("aligned_height"),
        py::arg("aligned_width"), py::arg("spatial_scale"),
        py::arg("sampling_ratio"), py::arg("pool_mode"), py::arg("aligned"));
  m.def("roi_align_backward", &roi_align_backward, "roi_align backward (CPU)",
        py::arg("grad_output"), py::arg("rois"), py::arg("argmax_y"),
        py::arg("argmax_x"), py::arg("grad_input"), py::arg("aligned_height"),
        py::arg("aligned_width"), py::arg("spatial_scale"),
        py::arg("sampling_ratio"), py::arg("pool_mode"), py::arg("aligned"));
  m.def("bbox_overlaps", &bbox_overlaps, "bbox_overlaps (CPU)",
        py::arg("bboxes1"), py::arg("bboxes2"), py::arg("ious"),
        py::arg("mode"), py::arg("aligned"), py::arg("offset"));
}
"""

#: What happened to the kernels in this process: ``status`` is one of "not tried", "loaded",
#: "built", "full mmcv", "off", "absent", "failed"; ``detail`` says why; ``build_s`` the build time.
STATE: dict[str, object] = {"status": "not tried", "detail": "", "build_s": None}


class ExtStandIn(types.ModuleType):
    """``mmcv._ext`` without compiled code; forwards to ``backend`` where it has the kernel."""

    def __init__(self) -> None:
        super().__init__(EXT_NAME, "detspec's stand-in for mmcv._ext (mmcv-lite has no compiled ops)")
        # a spec with no loader: importlib.util.find_spec works, and mmengine's
        # mmcv_full_available() truthfully answers False
        self.__spec__ = importlib.machinery.ModuleSpec(EXT_NAME, None)
        object.__setattr__(self, "_backend", None)

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        backend = object.__getattribute__(self, "_backend")
        if backend is not None and hasattr(backend, attr):
            return getattr(backend, attr)

        def missing(*args, **kwargs):
            raise NotImplementedError(
                f"mmcv._ext.{attr} is not available: mmcv-lite has no compiled ops and detspec "
                "builds only nms, roi_align and bbox_overlaps"
            )

        missing.__name__ = attr
        return missing

    def attach(self, backend: types.ModuleType) -> None:
        object.__setattr__(self, "_backend", backend)

    @property
    def kernels(self) -> list[str]:
        backend = object.__getattribute__(self, "_backend")
        return sorted(n for n in dir(backend) if not n.startswith("_")) if backend is not None else []


def _real_extension_exists() -> bool:
    """A compiled ``mmcv._ext`` is installed (full mmcv, not mmcv-lite)."""
    try:
        return importlib.util.find_spec(EXT_NAME) is not None
    except (ImportError, ValueError):
        return False


def install_stand_in() -> types.ModuleType:
    """``mmcv._ext`` as imported from now on: the real one if installed, else the stand-in."""
    existing = sys.modules.get(EXT_NAME)
    if existing is not None:
        return existing
    if _real_extension_exists():
        return importlib.import_module(EXT_NAME)
    import mmcv

    stand_in = sys.modules[EXT_NAME] = ExtStandIn()
    mmcv._ext = stand_in  # as the import system sets a submodule on its package
    return stand_in


def _sources_root() -> Path:
    import mmcv

    if mmcv.__version__ != MMCV_VERSION:
        raise RuntimeError(f"installed mmcv is {mmcv.__version__}; the kernels are built for {MMCV_VERSION}")
    return Path(mmcv.__file__).parent / "ops" / "csrc"


def _fingerprint(root: Path) -> str:
    import torch

    digest = hashlib.sha256(f"{torch.__version__} {sys.version_info[:2]}".encode())
    for relative in sorted({**SOURCES, **HEADERS}):
        digest.update(relative.encode() + (root / relative).read_bytes())
    digest.update(GLUE.encode())
    return digest.hexdigest()[:16]


def _cached_library(cache_dir: Path, fingerprint: str) -> Path | None:
    try:
        stamp = json.loads((cache_dir / "stamp.json").read_text())
    except (OSError, ValueError):
        return None
    library = cache_dir / str(stamp.get("library", ""))
    if stamp.get("fingerprint") == fingerprint and library.is_file():
        return library
    return None


def _build(cache_dir: Path, root: Path, fingerprint: str) -> Path:
    """Compile the three kernels into ``cache_dir`` (the caller holds the lock)."""
    import torch
    from torch.utils import cpp_extension

    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_dir))
    try:
        src = work / "src"
        src.mkdir()
        for relative, name in {**SOURCES, **HEADERS}.items():
            shutil.copyfile(root / relative, src / name)
        (src / "glue.cpp").write_text(GLUE)
        os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 1))
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its progress lines; errors raise
            cpp_extension.load(
                name=MODULE,
                sources=[str(src / name) for name in [*SOURCES.values(), "glue.cpp"]],
                extra_include_paths=[str(src)],
                extra_cflags=["-O2", "-DMMCV_WITH_CPU"],
                build_directory=str(work),
                with_cuda=False,
                verbose=False,
            )
        seconds = round(time.perf_counter() - start, 1)
        built = next(work.glob(f"{MODULE}*.so"))
        library = cache_dir / f"{MODULE}-{fingerprint}.so"
        shutil.copyfile(built, library.with_suffix(".tmp"))
        os.replace(library.with_suffix(".tmp"), library)
        stamp = {
            "library": library.name,
            "fingerprint": fingerprint,
            "torch": torch.__version__,
            "mmcv_sources": f"mmcv=={MMCV_VERSION} csrc shipped with mmcv-lite ({root})",
            "build_s": seconds,
        }
        (cache_dir / "stamp.json.tmp").write_text(json.dumps(stamp, indent=1))
        os.replace(cache_dir / "stamp.json.tmp", cache_dir / "stamp.json")
        STATE["build_s"] = seconds
        return library
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _import_library(library: Path) -> types.ModuleType:
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    import torch  # noqa: F401  (the library links against libtorch, loaded by importing torch)

    loader = importlib.machinery.ExtensionFileLoader(MODULE, str(library))
    spec = importlib.util.spec_from_file_location(MODULE, library, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[MODULE] = module
    return module


def load_kernels(mode: str | None = None, cache_dir: Path = CACHE_DIR) -> types.ModuleType | None:
    """The compiled kernels attached to ``mmcv._ext`` (built first if needed and ``mode`` is
    "build"), or ``None`` with the reason in :data:`STATE`. Never raises."""
    mode = mode or os.environ.get(MODE_VARIABLE, "build")
    ext = install_stand_in()
    if not isinstance(ext, ExtStandIn):
        STATE.update(status="full mmcv", detail="a compiled mmcv._ext is installed")
        return ext
    if ext.kernels:
        return object.__getattribute__(ext, "_backend")
    if mode == "off":
        STATE.update(status="off", detail=f"{MODE_VARIABLE}=off")
        return None
    try:
        root = _sources_root()
        fingerprint = _fingerprint(root)
        library = _cached_library(cache_dir, fingerprint)
        status = "loaded"
        if library is None:
            if mode != "build":
                STATE.update(status="absent", detail=f"not built yet in {cache_dir} ({MODE_VARIABLE}={mode})")
                return None
            cache_dir.mkdir(parents=True, exist_ok=True)
            with open(cache_dir / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building: wait for it
                library = _cached_library(cache_dir, fingerprint)
                if library is None:
                    library = _build(cache_dir, root, fingerprint)
                    status = "built"
        backend = _import_library(library)
    except Exception as error:  # no compiler, no ninja, a failed compile: the ops are not provided
        STATE.update(status="failed", detail=f"{type(error).__name__}: {str(error).strip()[:500]}")
        return None
    ext.attach(backend)
    STATE.update(status=status, detail=str(library))
    return backend
