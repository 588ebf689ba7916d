"""The one base of Verbatim's user-facing errors (bad input, bad configuration, bad model files).

It lives in nlp, the bottom layer, so every layer's errors can derive from it and callers catch
one class instead of listing ~10. Each subclass keeps its historical builtin base (ValueError,
RuntimeError) so existing `except ValueError` callers keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping


class VerbatimError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits with `exit_code`."""

    exit_code: int = 2


def unknown_names(
    given: Iterable[object], known: Collection[str], synonyms: Mapping[str, str] | None = None
) -> list[str]:
    """Each of `given` not in `known`, quoted, with the known name it most likely means
    (close spelling, else `synonyms`): `'databse_url' (did you mean 'database_url'?)`.
    A misspelt key must be an error, never ignored: settings files and taxonomies use this."""
    names = [str(k) for k in known]
    parts = []
    for key in given:
        if str(key) in names:
            continue
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = close[0] if close else (synonyms or {}).get(str(key).lower())
        parts.append(f"{key!r}" + (f" (did you mean {hint!r}?)" if hint in names else ""))
    return parts
