"""``safe_load`` for front matter and directive options, through libyaml's C parser.

Every build reads the front matter of every page (page_meta.py, rules.py): PyYAML's
pure-Python parser was a visible part of a one-page rebuild. Same results; falls
back to the Python parser where PyYAML was built without libyaml.
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)
