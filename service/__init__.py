"""FastAPI service: thin routers over the shared query layer in `core.queries`."""
