"""API routers (thin: validation, then a call into core.queries / service helpers)."""
