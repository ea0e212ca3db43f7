"""One distribution, one top-level name: nothing generic like `server` or `client` in site-packages."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import wiretrace.client
import wiretrace.server

REPO = Path(__file__).resolve().parent.parent
ALLOWED_TOP = {"wiretrace"}


def _installed() -> importlib.metadata.Distribution:
    """wiretrace as installed in site-packages (the repository root, on sys.path for the tests package, holds
    the editable install's own wiretrace.egg-info, which is not what pip installed)."""
    [dist] = importlib.metadata.distributions(name="wiretrace", path=[sysconfig.get_paths()["purelib"]])
    return dist


def _top_level(names: list[str]) -> set[str]:
    tops = set()
    for name in names:
        top = name.split("/", 1)[0]
        if top.endswith((".dist-info", ".data")) or top.startswith("__editable__") or top in ("..", "__pycache__"):
            continue
        tops.add(top.removesuffix(".py").removesuffix(".pth"))
    return tops


def test_installed_distribution_top_level_names() -> None:
    dist = _installed()
    files = [str(f) for f in dist.files or []]
    assert files, "wiretrace has no RECORD"
    assert _top_level(files) <= ALLOWED_TOP
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"wiretrace": "wiretrace.cli:main"}


def test_editable_install_points_at_the_repo() -> None:
    """`pip install -e . --config-settings editable_mode=strict` maps server/ and client/ into wiretrace."""
    dist = _installed()
    if not any(str(f).startswith("__editable__") for f in dist.files or []):
        pytest.skip("not an editable install")
    assert Path(wiretrace.server.__file__).resolve() == REPO / "server" / "__init__.py"
    assert Path(wiretrace.client.__file__).resolve() == REPO / "client" / "__init__.py"


@pytest.mark.timeout(180)
def test_wheel_holds_only_the_wiretrace_package(tmp_path: Path) -> None:
    """What `pip install .` would put in site-packages."""
    # Build from a copy so setuptools' build/ directory does not land in the work tree.
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".*", "build", "data", "scratch", "benchmarks", "__pycache__", "*.egg-info")
    shutil.copytree(REPO, src, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), src],
        check=True,
        cwd=tmp_path,
    )  # fmt: skip
    [wheel] = tmp_path.glob("wiretrace-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert _top_level(names) == ALLOWED_TOP
    for expected in ("wiretrace/server/servicer.py", "wiretrace/client/client.py", "wiretrace/v1/syndication_pb2.py",
                     "wiretrace/v1/syndication_pb2.pyi", "wiretrace/cli.py", "wiretrace/engine.py"):  # fmt: skip
        assert expected in names


def test_importing_the_client_stays_light() -> None:
    """A client imports the API types and the generated messages, not the engine, the index or numba."""
    code = "import sys, wiretrace.client; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    )
    assert "wiretrace.client" in loaded
    heavy = {"numba", "datasketch", "wiretrace.engine", "wiretrace.index", "wiretrace.store", "wiretrace.scoring"}
    assert not heavy & loaded
