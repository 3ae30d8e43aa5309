"""Run the review check on real async SQLAlchemy code bases and print the table.

    python tools/review_corpus.py [--work DIR] [--findings DIR] [NAME ...]

Each code base is a public repository at a pinned commit (``CORPUS``). Its git
directory is read from ``$IMPLICIT_IO_MIRRORS/<owner>+<name>/repo`` (default
``/work/.mirror``: a bare clone, e.g. ``git clone --bare URL
/work/.mirror/owner+name/repo``); the script extracts the commit's Python files
into ``--work`` (default: a new temporary folder) and runs ``implicit-io-check``
on them in a process of its own, as a reviewer would, with ``--format sarif``.

It prints one row per code base: files, seconds, exit status, findings per rule,
and internal errors (IOE002). It fails (exit 1) if the check exits with anything
but 0 or 1 on any code base, or prints a traceback. ``--findings DIR`` writes each
code base's findings as text, for reading them (the precision the review-check
page reports comes from reading these).

The fetched code is never committed: only this list of repositories and commits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CodeBase:
    repo: str  # owner/name
    commit: str
    style: str


# region corpus
CORPUS = [
    CodeBase(
        "litestar-org/advanced-alchemy",
        "2accd6e10661c5e0ed5e13e2149020879b71bbda",
        "library: repositories and services over async and sync sessions",
    ),
    CodeBase(
        "fastapi-users/fastapi-users-db-sqlalchemy",
        "6397ace506d829a2ee12786da5d724c3f4c6b634",
        "library: a small async user database adapter",
    ),
    CodeBase(
        "aminalaee/sqladmin",
        "5ec2360f9d17e40414f4bcda24b2dac0fcda8f9c",
        "library: an admin interface for sync and async engines",
    ),
    CodeBase(
        "uriyyo/fastapi-pagination",
        "112bb00cafaa6448ff49b2a65363f18383913f6e",
        "library: pagination with SQLAlchemy and SQLModel integrations",
    ),
    CodeBase(
        "fief-dev/fief",
        "a77e7fb65fc54d7994740619684a87e85d1293ed",
        "app: an identity server, repository pattern over AsyncSession",
    ),
    CodeBase(
        "litestar-org/litestar-fullstack",
        "8b637ce4232a407142ae94ec95d7eb268f8fd765",
        "app: Litestar reference app, advanced-alchemy services",
    ),
    CodeBase(
        "igorbenav/FastAPI-boilerplate",
        "61d84fa0d5b550ca35561114d0173c764da8a1e1",
        "app: FastAPI template, async SQLAlchemy 2.0 with fastcrud",
    ),
    CodeBase(
        "testdrivenio/fastapi-sqlmodel-alembic",
        "b9f78641513d78ec89954b140efc7ba16a50d1de",
        "app: SQLModel with an async engine (tutorial)",
    ),
    CodeBase(
        "fastapi/full-stack-fastapi-template",
        "68adb40d37425f6f8668ec7e5a054500d045e43e",
        "app: SQLModel full-stack template (sync sessions)",
    ),
    CodeBase(
        "polarsource/polar",
        "c6c3645e639ee8eeaa05aa0835cf8e39e330382f",
        "app: a large async SQLAlchemy service (repositories, workers)",
    ),
    CodeBase(
        "igorbenav/fastcrud",
        "9724fb9d7c89eb582d24803e194675535843971e",
        "library: generic async CRUD and joins over AsyncSession",
    ),
    CodeBase(
        "jowilf/starlette-admin",
        "baf19ad2abbd6ccd1a7567c01ef617ee44eec94a",
        "library: an admin interface, SQLAlchemy sync and async",
    ),
    CodeBase(
        "absent1706/sqlalchemy-mixins",
        "9877efd7d4c934d91d25f0e7a3075852dabf3a53",
        "library: active-record style model mixins (sync session)",
    ),
    CodeBase(
        "Latand/tgbot_template_v3",
        "16edcd192c07b8de1dadea4d68b4704add094764",
        "app: aiogram 3 bot template, async repositories",
    ),
    CodeBase(
        "rafsaf/minimal-fastapi-postgres-template",
        "5a39f65b1fc3709b1fd4c394a4d9e8f2dce2280e",
        "app: minimal FastAPI template, async SQLAlchemy 2.0",
    ),
    CodeBase(
        "MasterGroosha/aiogram-and-sqlalchemy-demo",
        "3fcd41f05420a0c5aab2e62aaa00dd3c5b4489cb",
        "app: aiogram bot demo, async session middleware",
    ),
    CodeBase(
        "fastapi-practices/fastapi_best_architecture",
        "2e86d79150c0abf0191dc8c189734214c4934a17",
        "app: FastAPI admin backend, async CRUD layer and plugins",
    ),
    CodeBase(
        "PrefectHQ/prefect",
        "ce79dd3d6cfa2b7337265498210dbc4d25bcdc98",
        "app: a large orchestration server, async SQLAlchemy models",
    ),
    CodeBase(
        "strawberry-graphql/strawberry-sqlalchemy",
        "37803671fa22bada2b1fe8d2d97f95dfde28fdbe",
        "library: GraphQL types from models, async relationship loaders",
    ),
    CodeBase(
        "Netflix/dispatch",
        "dd2837e82a0bf5565b1b4b4b91ea30b7262d4061",
        "app: incident management service, sync sessions in FastAPI",
    ),
    CodeBase(
        "fastapi/sqlmodel",
        "a6469ef61bb903cbf7fd8749c70d8ceb8046c368",
        "library: SQLModel itself, its docs' examples and async session",
    ),
    CodeBase(
        "febus982/sqlalchemy-bind-manager",
        "11f953813615e662cb359888f29adbaac22946ef",
        "library: repositories and unit of work over sync and async sessions",
    ),
    CodeBase(
        "letta-ai/letta",
        "56ba9c25552605eec89de8ed3dc6394b625c1993",
        "app: an agent server, many async ORM models and managers",
    ),
    CodeBase(
        "bryanforbes/Erasmus",
        "c3f64ff877ccd89baafb47e313223be4bf231907",
        "app: a Discord bot, registry-mapped dataclasses, async sessions",
    ),
    CodeBase(
        "pavelepanov/auth_solid",
        "30874145403f4eca5ff8dc71852f08173b2bd4ea",
        "app: clean architecture, imperative mapping, async repositories",
    ),
    CodeBase(
        "sqlalchemy/sqlalchemy",
        "f35da7e2b9349a08b8de1f6bd3b07c8bf8616790",
        "library: SQLAlchemy itself, its tests and examples (many files)",
    ),
    CodeBase(
        "Flopp30/fortu-site",
        "26fc38a3f01c1c049e7f104782963947d2da057e",
        "app: FastAPI, layered, imperative mapping with relationships",
    ),
    CodeBase(
        "dialoguemd/fastapi-sqla",
        "086b67367384937210a0e0e7c4424bd3b6460baa",
        "library: FastAPI session dependency, sync and async",
    ),
    CodeBase(
        "grillazz/fastapi-sqlalchemy-asyncpg",
        "5d0207cb9b531f4dde28dec62fd5505e9e9c24b5",
        "app: FastAPI on asyncpg, pure SQLAlchemy 2.0 models with query classmethods",
    ),
    CodeBase(
        "joeblackwaslike/quart-sqlalchemy",
        "1de1f7b9e7a861d7fcda1530b3954dc17572012d",
        "library: Quart integration, sync and async binds (sa = sqlalchemy)",
    ),
    CodeBase(
        "wu-clan/sqlalchemy-crud-plus",
        "d89f65b45af3fcb043f4ba22230cb136c0ccfcaf",
        "library: generic async CRUD over AsyncSession",
    ),
    CodeBase(
        "gazorby/strawchemy",
        "d33bd34a94f12cb75cfdc99a96cf9f8d62804238",
        "library: Strawberry GraphQL types and resolvers, async and sync sessions",
    ),
    CodeBase(
        "aio-libs/aiohttp-admin",
        "29de3ef58468b9fc0841536c27ed5a3700a36b67",
        "library: aiohttp admin interface, SQLAlchemy data provider",
    ),
    CodeBase(
        "i-VRESSE/bartender",
        "58145d9c629bc7ee78a804f390a91d8a721f3efb",
        "app: FastAPI job middleware, DAO classes over AsyncSession",
    ),
    CodeBase(
        "VmTalik/ProductManagement",
        "25e70932b24b3a5f5013befa7486bb2280a81bc8",
        "app: FastAPI, AsyncAttrs base, generic CRUD class, alembic",
    ),
    CodeBase(
        "mansur-gabidullin/recipe-book-backend",
        "efe7f8c89286818dc068903ed7719d721eb8c96a",
        "app: FastAPI, async_scoped_session per task, repositories",
    ),
    CodeBase(
        "Dog-Hunter/Seika",
        "9b4ee5b589b7ed5513611842d1f08b3ce92939da",
        "app: a small aiogram 3 bot, module-level session in handlers",
    ),
    CodeBase(
        "agno-agi/agno",
        "9644f22982ae017eaa4ad85c561d927d9ac03119",
        "large library: agent framework, async Postgres/MySQL/SQLite storage",
    ),
    CodeBase(
        "Chainlit/chainlit",
        "488b74579ace74ad917556a1560e9db68e011219",
        "large app framework: an async SQLAlchemy data layer",
    ),
    CodeBase(
        "openai/openai-agents-python",
        "7f7a44f8dc0650296bd5ab6c745c9bcbaa6ac3b7",
        "large library: agents SDK, SQLAlchemy session memory",
    ),
    CodeBase(
        "stevenzhaoun/python-training-2025-11",
        "4201cd868f572dd142eaa1a40162095a77201f0e",
        "app: course sessions, an ariadne GraphQL server with aiodataloader batches",
    ),
    CodeBase(
        "team-crescendo/Crenata",
        "fb2fdf4892cbad0c4987d61076510b9b569c778f",
        "app: a Discord bot, MappedAsDataclass and AsyncAttrs, repositories",
    ),
    CodeBase(
        "bsgip/envoy",
        "4e9b4e47c27b542653f9254dffa21f6a3841b38d",
        'app: an IEEE 2030.5 utility server, lazy="raise" on every relationship',
    ),
    CodeBase(
        "mbsantiago/whombat",
        "c58c3054a5104996f6b1d9db937ccdd5cca90ed7",
        'app: audio annotation tool, lazy="joined" defaults, async API layer',
    ),
    CodeBase(
        "rubelw/OSSS",
        "5a2974d081dbec0c899fd4070e5cec1639d12c5b",
        'large app: school district system, lazy="selectin" relationships',
    ),
    CodeBase(
        "adamrefaey/asynctasq",
        "ac6ca93cd2f04b1e03815c01ccf0404a11a6f773",
        "library: async task queue, re-fetches ORM models in workers",
    ),
    CodeBase(
        "au-to-pi-lot/nexari",
        "5ff75a988b11f3404d0e326ffdbda78d74f956a5",
        "app: Discord LLM bot, `Mapped[...]` models, service classes",
    ),
    CodeBase(
        "lolevan/PayLinker",
        "b97bc772bf8000613283c9c19582bf56417fe47b",
        "app: a small Sanic payments API over an async session factory",
    ),
    CodeBase(
        "gubkobob/menu",
        "787f5a77e3a3be38632db6280500f45f18dd5ab2",
        "app: FastAPI repositories with a Celery beat task on async sessions",
    ),
    CodeBase(
        "Kargozaur/kanban",
        "de7ae7bac6578784a434b1133236d4892117d438",
        "app: FastAPI kanban board, unit of work, PEP 695 generic repositories",
    ),
    CodeBase(
        "mrbaboon/procrasturbate",
        "c52dff816620ce746973f649535d481bda114bd9",
        "app: FastAPI GitHub PR reviewer, procrastinate workers on async sessions",
    ),
    CodeBase(
        "FEFU-PROJECT-TOURISM/tourism",
        "61982d6dbbd3dc9a95686a91f049902c05442e9c",
        "app: FastAPI tours API, unit of work, chained eager loads, mappers",
    ),
    CodeBase(
        "memodb-io/Acontext",
        "259d73bfdebeed35ec2d4211ddc060a2d4126bc6",
        "app: agent context server, ORM relationships, async data services",
    ),
    CodeBase(
        "dripdrop-app/server-litestar",
        "6d3848a7d7d8ec80bcdc822e7bd19e70ccb05046",
        "app: a Litestar music-job service, plugin sessions and a queue worker",
    ),
    CodeBase(
        "argilla-io/argilla-server",
        "6130c634506bc649a64d8461992946537ae287e1",
        "app: a FastAPI annotation server, AsyncAttrs base, awaitable_attrs reads",
    ),
    CodeBase(
        "graphql-python/graphene-sqlalchemy",
        "febdc451edc3e45af51f7332f0353401e051091c",
        "library: Graphene GraphQL types from models, async batch loaders",
    ),
    CodeBase(
        "pallets-eco/flask-sqlalchemy-lite",
        "8d31da6885cb8eadf33f5ecaa19999b90a977fdb",
        "library: a Flask extension with sync and async engines per app context",
    ),
]
# endregion corpus


def mirrors() -> Path:
    return Path(os.environ.get("IMPLICIT_IO_MIRRORS", "/work/.mirror"))


def git_dir(code_base: CodeBase) -> Path:
    return mirrors() / code_base.repo.replace("/", "+") / "repo"


def extract(code_base: CodeBase, into: Path) -> int:
    """Write the commit's ``*.py`` files under ``into``; return how many.

    Blob by blob (``git cat-file --batch``): a snapshot may lack a large binary
    blob, which ``git archive`` would stop at; Python files are all the check reads.
    """
    repo = ["git", f"--git-dir={git_dir(code_base)}"]
    listing = subprocess.run(
        [*repo, "ls-tree", "-r", "-z", code_base.commit],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    blobs = []
    for entry in listing:
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        mode, kind, sha = meta.split()
        if kind == b"blob" and name.endswith(b".py") and mode != b"120000":
            blobs.append((sha.decode(), os.fsdecode(name)))
    request = "".join(f"{sha}\n" for sha, _ in blobs).encode()
    out = subprocess.run(
        [*repo, "cat-file", "--batch"], input=request, capture_output=True, check=True
    ).stdout
    position = 0
    written = 0
    for _, name in blobs:
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split()
        position = header_end + 1
        if header[-1] == b"missing":
            continue
        size = int(header[2])
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(out[position : position + size])
        position += size + 1
        written += 1
    return written


def run_check(folder: Path) -> tuple[float, subprocess.CompletedProcess]:
    command = [sys.executable, "-m", "implicit_io.review_check", "--format", "sarif"]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, str(folder)], capture_output=True, text=True, check=False
    )
    return time.perf_counter() - started, done


def findings_of(sarif: str) -> tuple[list[str], list[str]]:
    """(one line per finding, one line per internal error) of a SARIF log."""
    [run] = json.loads(sarif)["runs"]

    def line(entry: dict, code: str) -> str:
        location = entry["locations"][0]["physicalLocation"]
        region = location["region"]
        where = f"{location['artifactLocation']['uri']}:{region['startLine']}"
        return f"{where}:{region['startColumn']}: {code} {entry['message']['text']}"

    found = [line(result, result["ruleId"]) for result in run["results"]]
    errors = [
        line(note, note["descriptor"]["id"])
        for invocation in run.get("invocations", [])
        for note in invocation["toolExecutionNotifications"]
    ]
    return found, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="owner/name of code bases to run")
    parser.add_argument("--work", type=Path, help="where to extract (default: temp)")
    parser.add_argument("--findings", type=Path, help="write each one's findings here")
    arguments = parser.parse_args(argv)
    chosen = [c for c in CORPUS if not arguments.names or c.repo in arguments.names]
    work = arguments.work or Path(tempfile.mkdtemp(prefix="implicit-io-corpus-"))
    failed = False
    print("| code base | commit | files | seconds | exit | findings | IOE002 |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: |")
    for code_base in chosen:
        if not git_dir(code_base).is_dir():
            print(f"| {code_base.repo} | not fetched: {git_dir(code_base)} |||||")
            failed = True
            continue
        folder = work / code_base.repo.replace("/", "+")
        files = extract(code_base, folder)
        seconds, done = run_check(folder)
        broken = done.returncode not in (0, 1) or "Traceback" in done.stderr
        failed |= broken
        found, errors = findings_of(done.stdout) if done.stdout else ([], [])
        per_rule = Counter(line.split(": ")[1].split()[0] for line in found)
        rules = ", ".join(f"{code} {n}" for code, n in sorted(per_rule.items()))
        print(
            f"| {code_base.repo} | {code_base.commit[:10]} | {files} | "
            f"{seconds:.2f} | {done.returncode} | {rules or 'none'} | {len(errors)} |"
        )
        if broken:
            print(done.stderr, file=sys.stderr)
        if arguments.findings:
            arguments.findings.mkdir(parents=True, exist_ok=True)
            text = "".join(
                f"{line.removeprefix(str(folder) + '/')}\n" for line in found + errors
            )
            name = code_base.repo.replace("/", "+")
            (arguments.findings / f"{name}.txt").write_text(text, encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
