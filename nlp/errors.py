"""The one base of Verbatim's user-facing errors (bad input, bad configuration, bad model files).

It lives in nlp, the bottom layer, so every layer's errors can derive from it and callers catch
one class instead of listing ~10. Each subclass keeps its historical builtin base (ValueError,
RuntimeError) so existing `except ValueError` callers keep working.
"""

from __future__ import annotations


class VerbatimError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits with `exit_code`."""

    exit_code: int = 2
