"""What `pip install <this repository>` installs: the package, and nothing else."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import implicit_io
from guide_runtime.configurations import ROOT
from tests.plugins import INNER_RUN_PLUGINS_OFF

#: What the build reads: pyproject.toml, the README it names, and the package.
BUILD_INPUTS = ("pyproject.toml", "README-implicit-io.md", "implicit_io")
#: pyproject.toml's [build-system] table: the backend and what it requires.
BUILD_SYSTEM = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]


def test_the_build_backend_is_the_locked_one() -> None:
    """The wheel below is built with this environment's setuptools, as pinned by
    the lock; it must be one that pyproject.toml's build requirements accept."""
    [required] = [Requirement(r) for r in BUILD_SYSTEM["requires"]]
    assert required.name == "setuptools"
    assert required.specifier.contains(metadata.version("setuptools")), (
        "pin a setuptools that pyproject.toml's [build-system] accepts: "
        "edit requirements.in and run make lock"
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's wheel, built as pip builds it."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "src"
    source.mkdir()
    for name in BUILD_INPUTS:  # a copy: the build writes beside its sources
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    # The declared backend's PEP 517 hook, as pip and `python -m build` call it, in
    # a process of its own; with the locked setuptools (see above), not one
    # installed into a new build environment on every run.
    build_wheel = (
        f"import {BUILD_SYSTEM['build-backend']} as backend\n"
        f"print(backend.build_wheel({str(tmp_path / 'dist')!r}))"
    )
    (tmp_path / "dist").mkdir()
    subprocess.run(
        [sys.executable, "-c", build_wheel],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [built] = (tmp_path / "dist").glob("*.whl")
    return built


def test_the_wheel_holds_the_package_its_command_and_its_plugin(wheel: Path):
    assert wheel.name == f"implicit_io-{implicit_io.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"implicit_io-{implicit_io.__version__}.dist-info"
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
    packaged = {name.split("/")[0] for name in names}
    assert packaged == {"implicit_io", info}  # no snippets/, tests/, _ext/
    shipped = {Path(name).name for name in names if name.startswith("implicit_io/")}
    assert shipped == {p.name for p in (ROOT / "implicit_io").glob("*.py")}
    assert "implicit-io-check = implicit_io.review_check:main" in entry_points
    assert "implicit-io-report = implicit_io.report:main" in entry_points
    assert "implicit_io.pytest_plugin = implicit_io.pytest_plugin" in entry_points
    requires = metadata.get_all("Requires-Dist")
    assert any(r.startswith("sqlalchemy[asyncio]") and "<2.2" in r for r in requires)
    assert any(r.startswith("libcst") for r in requires)
    # The package explains itself: its own README, its extras.
    assert metadata.get_payload() == (ROOT / "README-implicit-io.md").read_text()
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert set(metadata.get_all("Provides-Extra")) == {"pytest", "xdist"}
    assert any("pytest-asyncio" in r and 'extra == "pytest"' in r for r in requires)
    assert any("pytest-xdist" in r and 'extra == "xdist"' in r for r in requires)


def test_the_top_level_names_the_public_api() -> None:
    from implicit_io import guard, report, rules

    assert implicit_io.ImplicitIOGuard is guard.ImplicitIOGuard
    assert implicit_io.Report is report.Report
    assert implicit_io.rule is rules.rule
    assert all(hasattr(implicit_io, name) for name in implicit_io.__all__)


#: A service's test that the plugin, installed, guards (track mode lets it pass).
SERVICE_TEST = """
from sqlalchemy import create_engine
from sqlalchemy.orm import Session


def test_a_session():
    with Session(create_engine("sqlite://")) as session:
        assert session.connection() is not None
"""


@pytest.mark.parametrize(
    ("options", "conftest"),
    [
        pytest.param([], "", id="installed, nothing named"),
        pytest.param(
            ["-p", "implicit_io.pytest_plugin"],
            'pytest_plugins = ["implicit_io.pytest_plugin"]\n',
            id="-p and pytest_plugins too",
        ),
    ],
)
def test_the_installed_plugin_loads_once_however_it_is_named(
    wheel: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    conftest: str,
) -> None:
    """Installed, the plugin loads from its entry point; a suite that also names its
    module (-p, pytest_plugins) gets the same plugin, not a second registration
    that pytest refuses ("already registered under a different name")."""
    installed = pytester.path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:  # a pure wheel installs by unpacking
        archive.extractall(installed)
    pytester.makepyfile(test_service=SERVICE_TEST)
    pytester.makeconftest(conftest)
    monkeypatch.setenv("PYTHONPATH", str(installed))
    result = pytester.runpytest_subprocess(
        *INNER_RUN_PLUGINS_OFF,
        *options,
        "--implicit-io=track",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*implicit I/O*"])
    disabled = pytester.runpytest_subprocess(
        *INNER_RUN_PLUGINS_OFF,
        "-p",
        "no:implicit_io.pytest_plugin",
        "--implicit-io=track",
    )
    assert disabled.ret == pytest.ExitCode.USAGE_ERROR
    disabled.stderr.fnmatch_lines(["*unrecognized arguments: --implicit-io=track*"])
