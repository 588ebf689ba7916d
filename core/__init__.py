"""Shared core: settings, storage schema and the query layer used by jobs and service."""
