"""What the site's machinery costs: its build against a plain Sphinx twin.

    .venv/bin/python tests/benchmarks/bench_build.py [--rounds N] [--jobs N]
                                                     [--edit-jobs N] [--twin-jobs N]
                                                     [--no-tests] [--instructions]

The plain twin is the guide's pages (``index.md``, ``guides/``) built with only
the third-party extensions (myst-parser, copybutton, design): a copy of ``conf.py``
whose ``extensions`` list keeps those three, and pages whose own directives
(``{captured-run}``, ...) become plain code blocks and whose own roles (``{rule}``,
``{proof}``) become inline code.
The site is built as ``make html`` builds it (``-j``: one more than the CPUs;
``--jobs 1`` for a serial build), and rebuilt after the one-page edit as ``make
serve`` rebuilds it (serially; ``--edit-jobs 3`` to see what forking workers for one
page costs), the twin as Sphinx builds by default (one
process; ``--twin-jobs 3`` builds it as the site is built, which on two CPUs is
faster, so every ratio is higher). Both trees live
in a temporary folder and are built alternately, in one run; only ratios are
reported, since the machine may be shared: each is the median of the rounds'
ratios, each measurement against its baseline of the same round. The targets are
those of issue 21. The build runs no example (it renders the suite's records in
proofs/), so "records kept" is a build after removing the HTML output and its
doctrees only.

A second twin, "same pages", is the plain twin with every page the site has: the
test-code and whole-module pages the site generates (``_proofs/``, ``_snippets/``)
become plain orphan documents (a title, a sentence and a ``literalinclude``), and the
third-party 404 and redirect extensions are on. The first twin lacks those ~50 pages
(the site writes 96 pages, it 43); this one is a plain Sphinx build of the same pages,
the true baseline, and the test suite is measured against both.

``--instructions`` also counts the one-page edit's instructions under valgrind's
callgrind (Debian's ``valgrind``; about half a minute per build): the same count
run after run, whatever else the machine is doing, where the seconds of one edit
swing by a fifth between rounds. It is the ratio to trust for that small a build.

The test suite is timed as an editor runs it: in a checkout where it has run
before (one untimed run first, after the builds), each timed run after a one-page
edit. Its first run is printed too: it builds what the suite keeps in ``_build``
beside the site (a serial build, a PostgreSQL cluster) for the first time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = (".venv*", "_build", ".git", "__pycache__", ".*_cache")
THIRD_PARTY = '["myst_parser", "sphinx_copybutton", "sphinx_design"]'
ALL_THIRD_PARTY = THIRD_PARTY[:-1] + ', "notfound.extension", "sphinx_reredirects"]'
#: The site's generated pages: folder -> (where their modules are, sentence, options).
GENERATED = {
    "_proofs": ("tests/**", "The tests the guide's claims cite.", ":linenos:\n"),
    "_snippets": ("snippets", "The whole module, as the test suite runs it.", ""),
}
#: Directives and roles of Sphinx, MyST and sphinx-design the pages use; every other
#: one is this site's own, and the twin shows its text plainly instead.
PLAIN = {"admonition", "doc", "figure", "index", "literalinclude", "ref", "tab-item"}
PLAIN |= {"tab-set", "toctree", "note", "warning", "code-block", "eval-rst"}
DIRECTIVE = re.compile(r"^```\{([\w-]+)\}(.*?)^```$", re.S | re.M)
ROLE = re.compile(r"\{([\w-]+)\}`([^`]*)`")
EDITED_PAGE = "guides/eager-loading.md"
FAILURES: list[str] = []
#: Targets: (measurement, baseline, largest ratio allowed).
TARGETS = (
    ("cold build", "plain cold", 1.5),
    ("html removed, records kept", "plain cold", 1.15),
    ("one-page edit", "plain one-page edit", 1.2),
    ("pytest, warm checkout", "plain cold, beside the suite", 5.0),
    ("cold build", "same pages cold", 1.5),
    ("html removed, records kept", "same pages cold", 1.15),
    ("one-page edit", "same pages one-page edit", 1.2),
    ("pytest, warm checkout", "same pages cold, beside the suite", 5.0),
)


def make_plain(tree: Path, extensions: str = THIRD_PARTY) -> None:
    """Turn a copy of the site into its plain twin."""
    conf = tree / "conf.py"
    text, found = re.subn(
        r"^extensions = \[.*?^\]",
        f"extensions = {extensions}",
        conf.read_text(),
        count=1,
        flags=re.S | re.M,
    )
    if not found:
        sys.exit("bench_build: conf.py has no 'extensions = [...]' list to replace")
    # The one substitution the site's own extensions define (_ext/rules.py).
    conf.write_text(text + '\nmyst_substitutions["rule_count"] = "five"\n')
    for page in [tree / "index.md", *(tree / "guides").rglob("*.md")]:
        source = DIRECTIVE.sub(_plain_directive, page.read_text())
        page.write_text(ROLE.sub(_plain_role, source))


def add_same_pages(tree: Path, site_html: Path) -> None:
    """Give the plain twin a plain document for each page the site generates."""
    conf = tree / "conf.py"
    folders = ", ".join(f'"{folder}/**"' for folder in GENERATED)
    text = conf.read_text().replace('"guides/**"]', f'"guides/**", {folders}]')
    conf.write_text(text)
    for folder, (modules, sentence, options) in GENERATED.items():
        for page in sorted((site_html / folder).glob("*.html")):
            source = next(tree.glob(f"{modules}/{page.stem}.py"))
            shown = source.relative_to(tree).as_posix()
            (tree / folder).mkdir(exist_ok=True)
            (tree / folder / f"{page.stem}.md").write_text(
                f"---\norphan: true\n---\n\n# {shown}\n\n{sentence}\n\n"
                f"```{{literalinclude}} /{shown}\n:language: python\n{options}```\n"
            )


def _plain_directive(match: re.Match[str]) -> str:
    name, rest = match.groups()
    return match[0] if name in PLAIN else f"```text\n{name}{rest}```"


def _plain_role(match: re.Match[str]) -> str:
    name, text = match.groups()
    return match[0] if name in PLAIN else f"`{text}`"


#: The environment `make` gives its commands (the Makefile unexports this one).
MAKE_ENVIRONMENT = {
    k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"
}


def sphinx(tree: Path, *options: str) -> Callable[[], None]:
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", *options]
    command += [str(tree), str(tree / "_build" / "html")]
    return lambda: subprocess.run(command, check=True, cwd=tree, env=MAKE_ENVIRONMENT)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def pages(tree: Path) -> dict[str, str]:
    html = tree / "_build" / "html"
    return {
        str(page.relative_to(html)): page.read_text()
        for page in sorted(html.rglob("*.html"))
    }


def run_tests(tree: Path) -> None:
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"]
    run = subprocess.run(
        pytest, cwd=tree, capture_output=True, text=True, env=MAKE_ENVIRONMENT
    )
    if run.returncode:  # timed all the same; the failure is reported
        FAILURES.append(run.stdout[-2000:])


def instructions(tree: Path) -> int:
    """Instructions a serial rebuild after a one-page edit executes (callgrind)."""
    append_blank_line(tree)
    with tempfile.TemporaryDirectory() as scratch:
        callgrind = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={scratch}/out",
        ]
        rebuild = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1"]
        counted = subprocess.run(
            [*callgrind, *rebuild, str(tree), str(tree / "_build" / "html")],
            cwd=tree,
            env={**MAKE_ENVIRONMENT, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", counted.stderr)
    if found is None:
        sys.exit(f"bench_build: no instruction count from valgrind:\n{counted.stderr}")
    return int(found[1])


def append_blank_line(tree: Path) -> None:
    page = tree / EDITED_PAGE
    page.write_text(page.read_text() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    jobs = str(len(os.sched_getaffinity(0)) + 1)  # as make html (SPHINX_JOBS)
    parser.add_argument("--jobs", default=jobs, help="Sphinx -j for the site")
    parser.add_argument(
        "--edit-jobs",
        default="1",
        help="Sphinx -j for the site's rebuild after the one-page edit (1: as make "
        "serve rebuilds)",
    )
    parser.add_argument(
        "--twin-jobs",
        default="1",
        help="Sphinx -j for the plain twin (1: sphinx-build's default; give the "
        "site's -j to compare like with like)",
    )
    parser.add_argument("--no-tests", action="store_true", help="skip the pytest run")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count the one-page edit's instructions (valgrind's callgrind)",
    )
    args = parser.parse_args()
    times: dict[str, list[float]] = {}
    identical: list[bool] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        real, plain = Path(tmp, "real"), Path(tmp, "plain")
        same = Path(tmp, "same")
        for copy in (real, plain, same):
            shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*SKIP))
        make_plain(plain)
        make_plain(same, ALL_THIRD_PARTY)
        build_real = sphinx(real, "-j", args.jobs)
        rebuild_real = sphinx(real, "-j", args.edit_jobs)
        build_plain = sphinx(plain, "-j", args.twin_jobs)
        build_same = sphinx(same, "-j", args.twin_jobs)
        build_real()  # untimed: which pages the site generates
        add_same_pages(same, real / "_build" / "html")

        def record(name: str, action: Callable[[], object]) -> None:
            times.setdefault(name, []).append(timed(action))

        for _ in range(args.rounds):
            shutil.rmtree(real / "_build", ignore_errors=True)
            for tree in (plain, same):
                shutil.rmtree(tree / "_build", ignore_errors=True)
            record("cold build", build_real)
            record("plain cold", build_plain)
            record("same pages cold", build_same)
            cold_pages = pages(real)
            shutil.rmtree(real / "_build" / "html")
            record("html removed, records kept", build_real)
            identical.append(pages(real) == cold_pages)
            append_blank_line(real)
            record("one-page edit", rebuild_real)
            append_blank_line(plain)
            record("plain one-page edit", build_plain)
            append_blank_line(same)
            record("same pages one-page edit", build_same)
        counts = {}
        if args.instructions:
            counts = {
                name: instructions(tree)
                for name, tree in [("site", real), ("same pages", same)]
            }
        if not args.no_tests:
            record("pytest, first run", lambda: run_tests(real))
            for _ in range(args.rounds):
                # Its own baseline, measured just before: the machine's speed drifts.
                for tree in (plain, same):
                    shutil.rmtree(tree / "_build", ignore_errors=True)
                record("plain cold, beside the suite", build_plain)
                record("same pages cold, beside the suite", build_same)
                append_blank_line(real)
                record("pytest, warm checkout", lambda: run_tests(real))
    load_after = os.getloadavg()

    median = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{args.rounds} rounds, site -j {args.jobs} (its rebuild after the edit "
        f"-j {args.edit_jobs}), twin -j {args.twin_jobs}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print("| Measurement | Ratio | Target | Met |")
    print("| --- | --- | --- | --- |")
    for name, baseline, limit in TARGETS:
        if name in median:
            # Each round's ratio, then their median: a measurement and its baseline
            # come from the same moment.
            ratio = statistics.median(
                m / b for m, b in zip(times[name], times[baseline], strict=True)
            )
            met = "yes" if ratio <= limit else "no"
            print(f"| {name} / {baseline} | {ratio:.2f}x | <= {limit}x | {met} |")
    # Seconds too, for the record; only the ratios mean much on a shared machine.
    print("medians: " + ", ".join(f"{k} {v:.2f}s" for k, v in median.items()))
    if counts:
        ratio = counts["site"] / counts["same pages"]
        met = "yes" if ratio <= 1.2 else "no"
        print(
            f"| one-page edit / same pages one-page edit, instructions "
            f"({counts['site']:,} / {counts['same pages']:,}) | {ratio:.3f}x | <= 1.2x "
            f"| {met} |"
        )
    same = "yes" if all(identical) else "no"
    for failure in FAILURES:
        print(f"pytest failed in the copy:\n{failure}")
    print(f"| page HTML with cache = without | {same} | identical | {same} |")


if __name__ == "__main__":
    main()
