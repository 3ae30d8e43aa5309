"""The result store (_ext/executed_store.py): a build re-runs exactly what changed."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from captured_run import CapturedRun
from executed_store import (
    DATABASE_URL_VARIABLE,
    STORE_VARIABLE,
    built_marker,
    cached_run,
    environment,
    everything_runs_in_parallel,
    project_files,
    store_ahead,
)

from guide_runtime import database as harness
from tests.site.small_sites import (
    build_in_parallel,
    build_small_site,
    copy_folders,
    probe_site,
)

CONF = """\
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent / "_ext")]
extensions = ["myst_parser", "captured_run", "generated_table", "template_cache"]
"""
INDEX = "# Home\n\n```{toctree}\neager\nsync\n```\n"
EAGER = """\
# Eager

Some prose.

```{captured-run} eager_loading:post_titles_by_author
```

```{captured-run} eager_loading:post_titles_by_author_lazy
:expect: error
```
"""
SYNC = "# Sync\n\n```{captured-run} run_sync:legacy_report\n```\n"


def test_the_store_reads_the_harness_variable() -> None:
    assert DATABASE_URL_VARIABLE == harness.DATABASE_URL_VARIABLE


def test_imports_are_followed_to_every_module_under_the_root(tmp_path: Path) -> None:
    files = {
        "snippets/__init__.py": "",
        "snippets/page.py": "import sqlalchemy\nfrom snippets.shared import x\n",
        "snippets/shared.py": "def x():\n    from toolkit import guard\n",
        "snippets/unused.py": "",
        "toolkit/__init__.py": "from .guard import Guard\n",
        "toolkit/guard.py": "from . import rules\nclass Guard: ...\n",
        "toolkit/rules.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    found = project_files(tmp_path, ("snippets.page",))
    assert {path.relative_to(tmp_path).as_posix() for path in found} == (
        set(files) - {"snippets/unused.py"}
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small site on the real extensions and snippets, with its own store."""
    site = tmp_path / "site"
    copy_folders(site, "_ext", "snippets", "tests")
    (site / "conf.py").write_text(CONF)
    (site / "index.md").write_text(INDEX)
    (site / "eager.md").write_text(EAGER)
    (site / "sync.md").write_text(SYNC)
    return site


def _build(site: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Build; then when each page's HTML was written."""
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)
    monkeypatch.setenv(STORE_VARIABLE, str(site / "store"))
    # A partial site: an error's explanation links to a page it does not have.
    build = build_small_site(site, site / "out", "-Dsuppress_warnings=ref.ref")
    assert build.returncode == 0, build.stderr
    return {
        page.stem: page.stat().st_mtime_ns for page in (site / "out").glob("*.html")
    }


def _stored(site: Path) -> dict[str, str]:
    """Stored runs, by entry: their target (other entries store checks, not runs)."""
    requests = {
        entry.name: json.loads(entry.read_text())["request"]
        for entry in (site / "store").glob("*.json")
    }
    return {name: r["target"] for name, r in requests.items() if "target" in r}


def _upgrade_sqlalchemy(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution's metadata folder named for another version, on the path, as
    after an upgrade."""
    (folder / "upgraded" / "SQLAlchemy-99.0.0.dist-info").mkdir(parents=True)
    monkeypatch.syspath_prepend(folder / "upgraded")


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_prose_reruns_nothing_and_a_snippet_exactly_what_imports_it(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _build(site, monkeypatch)
    first = _stored(site)
    assert sorted(first.values()) == [
        "eager_loading:post_titles_by_author",
        "eager_loading:post_titles_by_author_lazy",
        "run_sync:legacy_report",
    ]
    # Prose: the page is rebuilt, nothing runs again.
    _append(site / "eager.md", "\nMore prose.\n")
    after_prose = _build(site, monkeypatch)
    assert _stored(site) == first
    assert after_prose["eager"] > written["eager"]
    assert after_prose["sync"] == written["sync"]
    # A change to the code behind the eager page...
    _append(site / "snippets" / "eager_loading.py", "\n# Why: an editor's note.\n")
    after_code = _build(site, monkeypatch)
    added = {
        name: target for name, target in _stored(site).items() if name not in first
    }
    # ...runs that page's two snippets again, and only those,
    assert sorted(added.values()) == [
        "eager_loading:post_titles_by_author",
        "eager_loading:post_titles_by_author_lazy",
    ]
    # and rebuilds the page that shows them, not the other one.
    assert after_code["eager"] > after_prose["eager"]
    assert after_code["sync"] == written["sync"]


def test_another_package_version_reruns_everything(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build(site, monkeypatch)
    first = _stored(site)
    _upgrade_sqlalchemy(tmp_path, monkeypatch)
    _build(site, monkeypatch)
    assert len(_stored(site)) == 2 * len(first)


def test_another_database_url_is_another_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DATABASE_URL_VARIABLE, raising=False)
    default = environment.__wrapped__()
    monkeypatch.setenv(DATABASE_URL_VARIABLE, "postgresql+asyncpg://localhost/guide")
    assert environment.__wrapped__() != default


@pytest.mark.parametrize(
    ("parallel", "built", "loads"),
    [(3, False, True), (3, True, False), (1, False, False)],
    ids=["parallel-first-build", "parallel-built-before", "serial"],
)
def test_the_harness_is_loaded_before_the_fork_only_when_everything_runs(
    tmp_path: Path, parallel: int, built: bool, loads: bool
) -> None:
    marker = tmp_path / "built" / "fingerprint"
    if built:
        marker.parent.mkdir()
        marker.touch()
    assert everything_runs_in_parallel(parallel, ["index"], marker) is loads
    assert not everything_runs_in_parallel(parallel, [], marker)


def test_a_finished_build_marks_its_environment(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build(site, monkeypatch)
    assert built_marker(site).is_file()
    # Another environment has not been built with this store.
    _upgrade_sqlalchemy(site, monkeypatch)
    environment.cache_clear()
    try:
        assert not built_marker(site).exists()
    finally:
        environment.cache_clear()  # no fingerprint of this test's path outlives it


PROBE = """\
import os
from pathlib import Path

from executed_store import store_ahead, stored

READING = {"check": "computed beside the reading"}
WRITING = {"check": "computed beside the writing"}


def _ahead(app):
    store_ahead(app, lambda: stored(app.srcdir, READING, lambda: [os.getpid()]))
    # Whether the pages had been read (the step below ran) when it started.
    read = Path(app.outdir, "probe.txt")
    work = lambda: [os.getpid(), read.is_file()]
    store_ahead(app, lambda: stored(app.srcdir, WRITING, work), beside="writing")


def _later_step(app, name, material):
    computed = stored(app.srcdir, material, lambda: [-1])
    with Path(app.outdir, "probe.txt").open("a") as probe:
        probe.write(f"{name} {computed[0]} {os.getpid()} {computed[1:]}\\n")
    return []


def setup(app):
    app.setup_extension("executed_store")
    app.connect("builder-inited", _ahead)
    app.connect("env-updated", lambda app, env: _later_step(app, "read", READING))
    app.connect("html-collect-pages", lambda app: _later_step(app, "wrote", WRITING))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
"""


def test_a_first_parallel_build_stores_ahead_in_a_second_process(
    tmp_path: Path,
) -> None:
    site = probe_site(tmp_path / "site", PROBE)
    # A first build (a new store), in parallel, as make html runs it.
    build_in_parallel(site, jobs=2, **{STORE_VARIABLE: str(tmp_path / "store")})
    steps = [line.split(" ", 3) for line in (site / "out" / "probe.txt").open()]
    assert [step[0] for step in steps] == ["read", "wrote"]
    main = {int(step[2]) for step in steps}
    assert len(main) == 1, steps
    # Neither a later step (-1) nor the main process computed them.
    assert all(int(step[1]) not in (-1, *main) for step in steps), steps
    # The work beside the writing started once the pages were read.
    assert steps[1][3].strip() == "[True]", steps


def test_work_ahead_runs_beside_the_reading_or_the_writing_only() -> None:
    with pytest.raises(ValueError, match="beside must be one of"):
        store_ahead(object(), lambda: None, beside="linking")


def test_a_missing_run_is_computed_once_however_many_need_it(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's reader that needs a run the work ahead is computing waits for it."""
    monkeypatch.setenv(STORE_VARIABLE, str(site / "store"))
    computed = site / "computed.txt"

    def slow() -> list[int]:
        with computed.open("a") as log:
            log.write("computed\n")
        time.sleep(0.2)  # long enough for the other process to ask meanwhile
        return [os.getpid()]

    def run(results: multiprocessing.Queue) -> None:
        results.put(cached_run(site, CapturedRun, ["eager:x"], {"target": "x"}, slow))

    # Two processes, as a build's reader and its work ahead are.
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=run, args=(results,)) for _ in range(2)]
    for process in processes:
        process.start()
    stored = [results.get(timeout=30) for _ in processes]
    for process in processes:
        process.join()
    assert computed.read_text() == "computed\n"
    assert stored[0] == stored[1]
