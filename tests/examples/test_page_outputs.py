"""Every run a page shows, run here: the page's claim about it holds, and its output
is the one recorded for the build to show (tests/plugins/outputs.py).

A page shows a run with ``{captured-run}``, ``{round-trips}``, ``{generated-table}``
or a rule page's ``{rule-example}`` (guide_runtime/outputs.py finds them). One test
per distinct run, however many pages show it.
"""

from __future__ import annotations

import pytest

from guide_runtime.outputs import PageUse, requests_by_key
from implicit_io import rule_links
from tests.plugins.outputs import PageOutputs

USES = requests_by_key()


@pytest.mark.parametrize("key", sorted(USES))
def test_page_output(
    key: str, page_outputs: PageOutputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    uses: list[PageUse] = USES[key]
    request = uses[0].request
    # Records cite the default published address; a build for another one
    # rewrites it (_ext/recorded_output.py).
    monkeypatch.delenv(rule_links.DOCS_URL_VARIABLE, raising=False)
    output = request.run()
    if request.kind == "captured-run":
        for use in uses:
            error = output["error"]
            if use.expect == "ok":
                assert error is None, (
                    f"{use}: the page shows {key} working, but it raised {error}. "
                    "Fix the snippet, or mark the example ':expect: error'."
                )
            else:
                assert error is not None, (
                    f"{use}: the page shows {key} failing (':expect: error'), but "
                    f"it returned {output['returned']}."
                )
    varies = ("result", "returned") if any(use.result_varies for use in uses) else ()
    page_outputs.check(request, output, varies)
