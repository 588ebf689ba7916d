"""`python -m verbatim_cli ...` is `verbatim ...`."""

from verbatim_cli import app

app()
