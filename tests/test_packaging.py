"""detspec as a library installs it: the wheel, in a fresh virtual environment without torch, runs
the shipped suite from an unrelated directory on a toy adapter that provides one operation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import ROOT

TOY_ADAPTER = '''
"""A third-party library with one operation, box areas, written as docs/adapters.md says."""
from detspec import Conventions
from detspec.properties.interface import BoxArea, Implementation


class Toy(Implementation, BoxArea):
    name = "toy"
    version = "0.0.1"
    conventions = Conventions(dtype="float64")

    def box_area(self, *, boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def factory():
    return Toy()
'''


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_XDIST_WORKER", "VIRTUAL_ENV")
    }
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The wheel built from the checkout and installed into a fresh venv. Its dependencies are
    resolved by pip without installing them (the resolution must hold no torch); to keep this
    test fast, the venv then reads the resolved distributions from the checkout's venv through a
    path file -- torch and the checkout's own detspec stay invisible to it."""
    scratch = tmp_path_factory.mktemp("wheel")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(scratch / "dist"), str(ROOT)]
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (scratch / "dist").glob("detspec-*.whl")
    venv = scratch / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    resolution = scratch / "resolution.json"
    resolved = _run(
        [str(python), "-m", "pip", "install", "-q", "--dry-run", "--report", str(resolution), str(wheel)]
    )
    assert resolved.returncode == 0, resolved.stderr
    wanted = {item["metadata"]["name"].lower() for item in json.loads(resolution.read_text())["install"]}
    install = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
    assert install.returncode == 0, install.stderr
    _borrow(venv, wanted - {"detspec"})
    return {"wheel": wheel, "python": python, "bin": venv / "bin", "scratch": scratch, "resolved": wanted}


def _borrow(venv: Path, names: set[str]) -> None:
    """Links to just these distributions of the checkout's venv, on the new venv's path."""
    import importlib.metadata
    import sysconfig

    borrowed = venv / "borrowed"
    borrowed.mkdir()
    source = Path(sysconfig.get_paths()["purelib"])
    for name in names:
        for file in importlib.metadata.distribution(name).files or ():
            top = Path(str(file)).parts[0]
            target, link = source / top, borrowed / top
            if target.exists() and not link.exists() and not top.endswith(".pth"):
                link.symlink_to(target)
    (site_packages,) = (venv / "lib").glob("python*/site-packages")
    (site_packages / "borrowed.pth").write_text(f"{borrowed}\n")


def test_the_wheel_carries_the_spec_and_the_expectations_and_pulls_no_torch(installed):
    probe = textwrap.dedent(
        """
        import importlib, importlib.util, json, pkgutil
        import detspec
        from detspec.conformance.spec_index import load_clauses
        from detspec.conformance.expectations import expectations_path
        modules = [m.name for m in pkgutil.walk_packages(detspec.__path__, "detspec.")
                   if not m.name.startswith("detspec.conformance.adapters.")]
        for name in modules:
            importlib.import_module(name)
        print(json.dumps({
            "version": detspec.__version__,
            "clauses": len(load_clauses()),
            "torchvision_expectations": expectations_path("torchvision").exists(),
            "torch": importlib.util.find_spec("torch") is not None,
            "modules": len(modules),
        }))
        """
    )
    result = _run([str(installed["python"]), "-c", probe], cwd=installed["scratch"])
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["version"] == "0.1.0" and facts["clauses"] >= 100
    assert facts["torchvision_expectations"] and not facts["torch"]
    assert "torch" not in installed["resolved"] and {"numpy", "hypothesis", "pytest"} <= installed["resolved"]


def test_without_the_extras_the_built_ins_say_what_to_install(installed, tmp_path):
    """``detspec list`` tells the implementations whose libraries are missing, and running one
    stops with a one-line error that names the extra (the matrix lists them as not installed)."""
    listed = _run([str(installed["bin"] / "detspec"), "list"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    states = dict(line.split(None, 1) for line in listed.stdout.splitlines())
    assert states["reference"].startswith("installed")
    assert states["torchvision"].startswith("not installed (missing torch, torchvision")
    assert "pip install 'detspec[torchvision]'" in states["torchvision"]
    run = _run([str(installed["bin"] / "detspec"), "run", "--impl", "torchvision"], cwd=tmp_path)
    assert run.returncode != 0 and "pip install 'detspec[torchvision]'" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and not (tmp_path / "reports").exists()


def test_detspec_run_on_a_toy_adapter_from_another_directory(installed, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "toy_adapter.py").write_text(TOY_ADAPTER)
    result = _run(
        [str(installed["bin"] / "detspec"), "run", "--impl", "toy_adapter:factory", "--report-dir", "out",
         "--", "--junitxml", "junit.xml"],
        cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((project / "out" / "toy.json").read_text())
    statuses = {c["id"]: c["status"] for c in report["clauses"]}
    assert statuses.pop("boxes.area.formula") == "pass"
    assert set(statuses.values()) == {"not-provided"}, {s for s in statuses.values()}
    assert (project / "out" / "toy.html").exists() and (project / "junit.xml").exists()
