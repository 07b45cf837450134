"""The clinic web application (FastAPI) and its built front end (static/)."""
