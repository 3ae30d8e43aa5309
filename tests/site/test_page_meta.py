"""Policy metadata: validated fields, the card, and the review reminder."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from _ext.page_meta import (
    PageMeta,
    overdue_message,
    page_metas,
    stale_cards,
)
from guide_runtime.configurations import ROOT
from guide_runtime.front_matter import PolicyPage
from guide_runtime.pages import FrontMatterError, docname, front_matter, site_pages
from tests.site.small_sites import build_small_site, small_conf

GOOD = {
    "status": "adopted",
    "decision_level": "advisory",
    "applies_to": ["api-runtime", "workers", "tests"],
    "last_reviewed": date(2026, 6, 17),
    "review_every": "6 months",
    "owner": "Platform engineering",
}
TODAY = date(2026, 11, 23)


def _meta(**change: object) -> PageMeta:
    policy = PolicyPage.model_validate({**GOOD, **change}).model_dump()
    return PageMeta("guides/policy", policy)


def _load(root: Path) -> tuple[dict[str, PageMeta], list[str]]:
    """What the build finds: each page's front matter validated as it is read (a
    page that does not validate is a problem), then the policy pages among them."""
    front_matters, problems = {}, []
    for page in site_pages(root):
        try:
            front_matters[docname(root, page)] = front_matter(root, page).model_dump()
        except FrontMatterError as error:
            problems.append(str(error))
    found, later = page_metas(front_matters, TODAY)
    return found, problems + later


def _problems(tmp_path: Path, front: str) -> list[str]:
    (tmp_path / "guides").mkdir(exist_ok=True)
    (tmp_path / "guides" / "policy.md").write_text(f"---\n{front}---\n\n# Policy\n")
    found, problems = _load(tmp_path)
    assert found == {} or not problems
    return problems


def test_the_policy_page_carries_valid_metadata() -> None:
    found, problems = _load(ROOT)
    assert problems == []
    policy = found["guides/policy"].policy
    assert policy["status"] == "adopted"
    assert policy["decision_level"] == "advisory"
    assert policy["applies_to"] == ["api-runtime", "workers", "tests"]
    assert policy["last_reviewed"] == date(2026, 6, 17)
    assert found["guides/policy"].review_due == date(2026, 12, 17)


@pytest.mark.parametrize(
    ("every", "due"),
    [
        ("6 months", date(2027, 2, 28)),  # no 31 February: the month's last day
        ("1 month", date(2026, 9, 30)),
        ("90 days", date(2026, 11, 29)),
        ("2 weeks", date(2026, 9, 14)),
    ],
)
def test_review_due_dates(every: str, due: date) -> None:
    assert _meta(last_reviewed=date(2026, 8, 31), review_every=every).review_due == due


def test_overdue_is_decided_by_the_injected_day() -> None:
    meta = _meta()
    assert not meta.overdue(date(2026, 12, 17))
    assert meta.overdue(date(2026, 12, 18))
    assert overdue_message(meta) == (
        "guides/policy.md: review overdue: last reviewed 2026-06-17, due 2026-12-17 "
        "(every 6 months). Platform engineering: review the page, then set "
        "last_reviewed to the date of the review."
    )


def test_cached_cards_are_rebuilt_when_the_review_date_passes() -> None:
    # The policy page and the landing page showed the card while it was in date.
    shown = {
        "guides/policy": ("guides/policy", False),
        "index": ("guides/policy", False),
    }
    metas = {"guides/policy": _meta()}
    assert stale_cards(shown, metas, date(2026, 12, 17)) == []
    assert stale_cards(shown, metas, date(2026, 12, 18)) == ["guides/policy", "index"]
    overdue = {name: (source, True) for name, (source, _) in shown.items()}
    assert stale_cards(overdue, metas, date(2026, 12, 18)) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "approved"}, "policy.status: Input should be 'draft', 'adopted'"),
        ({"decision_level": "strict"}, "policy.decision_level: Input should be"),
        ({"applies_to": ["web"]}, "policy.applies_to.0: Input should be 'api-runtime'"),
        ({"applies_to": ["tests", "tests"]}, "each audience once"),
        ({"applies_to": "workers"}, "policy.applies_to: Input should be a valid list"),
        ({"last_reviewed": "17 June"}, "(a date written YYYY-MM-DD, unquoted)"),
        ({"last_reviewed": date(2027, 1, 1)}, "2027-01-01 is in the future"),
        ({"review_every": "yearly"}, "(like '6 months', '90 days' or '8 weeks')"),
        ({"owner": " "}, "policy.owner: String should have at least 1 character"),
        ({"reviewer": "me"}, "unknown field 'policy.reviewer': remove it"),
    ],
)
def test_a_malformed_field_is_refused(
    tmp_path: Path, change: dict, message: str
) -> None:
    front = yaml.safe_dump({"policy": {**GOOD, **change}}, sort_keys=False)
    [problem] = _problems(tmp_path, front)
    assert problem.startswith("guides/policy.md: ")
    assert message in problem


@pytest.mark.parametrize("field", list(GOOD))
def test_a_missing_field_is_refused(tmp_path: Path, field: str) -> None:
    data = {key: value for key, value in GOOD.items() if key != field}
    front = yaml.safe_dump({"policy": data}, sort_keys=False)
    [problem] = _problems(tmp_path, front)
    assert f"policy.{field} is missing: add it" in problem


# --- A small site with one policy page -----------------------------------------

CONF = small_conf("myst_parser", "sphinx_design", "page_meta")


def _site(tmp_path: Path, meta: dict) -> Path:
    (tmp_path / "guides").mkdir()
    (tmp_path / "conf.py").write_text(CONF)
    (tmp_path / "index.md").write_text(
        "# Home\n\n```{policy-card} /guides/policy\n```\n\n"
        "```{toctree}\nguides/policy\n```\n"
    )
    front = yaml.safe_dump({"policy": meta}, sort_keys=False)
    (tmp_path / "guides" / "policy.md").write_text(f"---\n{front}---\n\n# Policy\n")
    return tmp_path


def test_an_overdue_page_builds_green_and_says_so(tmp_path: Path) -> None:
    site = _site(tmp_path, {**GOOD, "last_reviewed": date(2024, 1, 15)})
    build = build_small_site(site)
    assert build.returncode == 0, build.stderr  # -W: not a warning
    assert "WARNING" not in build.stderr
    assert "guides/policy.md: review overdue: last reviewed 2024-01-15" in build.stderr
    page = (site / "_build" / "guides" / "policy.html").read_text()
    assert "Review overdue" in page
    assert "was due for review on 2024-07-15" in page
    assert "sd-card" in page and "adopted" in page
    home = (site / "_build" / "index.html").read_text()
    assert "Review overdue" in home  # the landing page's card says so too


def test_a_page_in_date_shows_its_card_without_notice(tmp_path: Path) -> None:
    site = _site(tmp_path, {**GOOD, "last_reviewed": date.today()})
    build = build_small_site(site)
    assert build.returncode == 0, build.stderr
    assert "review overdue" not in build.stderr
    page = (site / "_build" / "guides" / "policy.html").read_text()
    assert "Next review" in page and "Review overdue" not in page


def test_bad_metadata_fails_the_build_naming_file_and_fix(tmp_path: Path) -> None:
    site = _site(tmp_path, {**GOOD, "status": "approved"})
    build = build_small_site(site)
    assert build.returncode != 0
    assert (
        "page metadata: guides/policy.md: front matter: policy.status: Input should "
        "be 'draft', 'adopted' or 'retired', not 'approved'."
    ) in build.stderr


def test_bad_metadata_fails_every_build_until_fixed(tmp_path: Path) -> None:
    # The page is not edited between the builds: it is read again because it failed.
    site = _site(tmp_path, {**GOOD, "review_every": "yearly"})
    for _ in range(2):
        build = build_small_site(site)
        assert build.returncode != 0
        assert "page metadata: guides/policy.md: front matter: " in build.stderr
    policy = site / "guides" / "policy.md"
    policy.write_text(policy.read_text().replace("yearly", "6 months"))
    assert build_small_site(site).returncode == 0
