import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession

import implicit_io
from guide_runtime.configurations import ROOT
from implicit_io import review_check
from implicit_io.allow_list import load_allow_list
from implicit_io.guard import GUARD_RULES, Mode
from snippets.adopting_the_toolkit import (
    post_titles_by_author,
    test_each_author_is_loaded_with_its_posts,  # collected: the page's example
    test_post_titles_by_author,  # collected: the page's example
)

ADOPTION = ROOT / "snippets" / "adoption"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


async def test_the_budgeted_route_returns_the_titles(session: AsyncSession) -> None:
    assert await post_titles_by_author(session) == {
        "ada": ["Notes on engines", "On sessions"],
        "grace": ["Compilers"],
        "linus": [],
    }
    assert test_post_titles_by_author.pytestmark[0].args == (2,)
    assert test_each_author_is_loaded_with_its_posts.__name__.startswith("test_")


def test_the_package_declares_what_the_page_says_it_installs() -> None:
    project = PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["packages"] == ["implicit_io"]
    assert project["scripts"] == {
        "implicit-io-check": "implicit_io.review_check:main",
        "implicit-io-report": "implicit_io.report:main",
    }
    assert project["entry-points"]["pytest11"] == {
        "implicit_io.pytest_plugin": "implicit_io.pytest_plugin"
    }
    assert "sqlalchemy[asyncio]>=2.0,<2.2" in project["dependencies"]
    assert implicit_io.__version__.count(".") == 2


def test_the_allow_list_example_loads() -> None:
    entries = load_allow_list(ADOPTION / "implicit-io-allow.toml")
    assert [(e.rule, e.attribute) for e in entries] == [
        ("IO102", "Order.customer"),
        ("IO204", "Invoice.total"),
    ]
    assert {e.rule for e in entries} <= GUARD_RULES
    assert all(e.owner and e.rationale for e in entries)


def test_the_pytest_settings_example_names_a_mode_and_the_allow_list() -> None:
    settings = tomllib.loads((ADOPTION / "pyproject.toml").read_text())
    options = settings["tool"]["pytest"]["ini_options"]
    assert Mode(options["implicit_io"]) is Mode.TRACK
    assert (ADOPTION / options["implicit_io_allow"]).is_file()


def test_the_pre_commit_example_uses_the_shipped_hook() -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    config = yaml.safe_load((ADOPTION / "pre-commit-config.yaml").read_text())
    [repo] = config["repos"]
    assert repo["repo"] == "local"  # no URL to guess: the installed command
    assert [h["id"] for h in repo["hooks"]] == [hook["id"]]
    [local] = repo["hooks"]
    assert (local["entry"], local["types"]) == (hook["entry"], hook["types"])
    assert hook["entry"] in PYPROJECT["project"]["scripts"]
    assert (hook["language"], hook["types"]) == ("python", ["python"])


def _workflow_commands() -> list[list[str]]:
    workflow = yaml.safe_load((ADOPTION / "implicit-io.yml").read_text())
    [job] = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    return [shlex.split(run.replace("${{ github.base_ref }}", "main")) for run in runs]


def test_the_workflow_runs_each_phase() -> None:
    commands = _workflow_commands()
    assert [command[0] for command in commands] == [
        "pip",
        "implicit-io-check",
        "pytest",
        "pytest",
    ]
    modes = [
        arg.split("=")[1] for c in commands for arg in c if "--implicit-io=" in arg
    ]
    assert modes == ["enforce", "enforce"]
    [install] = [c for c in commands if c[0] == "pip"]
    assert install[-1] == "./orm-io-guide[xdist]"
    assert "xdist" in PYPROJECT["project"]["optional-dependencies"]
    phase_2 = commands[-1]
    assert "--implicit-io-baseline=implicit-io-baseline.json" in phase_2


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_the_workflow_review_check_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # The command as the workflow writes it, in a repository with a main branch.
    [command] = [c for c in _workflow_commands() if c[0] == "implicit-io-check"]
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("import sqlalchemy\n")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "-c", "user.email=d@example.test", "-c", "user.name=D", "add", ".")
    _git(
        tmp_path,
        "-c",
        "user.email=d@example.test",
        "-c",
        "user.name=D",
        "commit",
        "-qm",
        "base",
    )
    _git(tmp_path, "update-ref", "refs/remotes/origin/main", "HEAD")
    monkeypatch.chdir(tmp_path)
    assert review_check.main(command[1:]) == 0
    (tmp_path / "src" / "app.py").write_text(
        "from sqlalchemy.orm import relationship\nx = relationship('X')\n"
    )
    assert review_check.main(command[1:]) == 1
    assert capsys.readouterr().out.startswith("::error file=src/app.py,line=2,")
