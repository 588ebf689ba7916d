"""Batch and scheduled jobs: thin orchestration over `nlp/` and `core/` storage."""
