"""Did-you-mean hints for misspelt names (methods, datasets, models, settings, reproductions).

An integration with no paper: difflib's closest matches, so that ``--set epoch=20`` answers
"did you mean 'epochs'?" instead of only listing every valid name.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid name, or ``""`` when nothing is close."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(choices), n=2, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {' or '.join(map(repr, close))}?)"


def check_name(kind: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError naming it, the closest match
    and every valid name."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{kind} must be one of {', '.join(map(repr, choices))}; got {value!r}"
                         f"{did_you_mean(value, choices)}")
    return value
