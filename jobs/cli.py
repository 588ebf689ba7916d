"""Transitional alias: the root `verbatim` app lives in `verbatim_cli` (above jobs and service).

Console scripts installed before 0.2 point at `jobs.cli:app`; this keeps them working until the
package is reinstalled. The import is dynamic on purpose: jobs must not depend on service, and
this alias is not a dependency of any job. Delete it once nothing points here.
"""

from __future__ import annotations

import importlib

app = importlib.import_module("verbatim_cli").app

if __name__ == "__main__":
    app()
