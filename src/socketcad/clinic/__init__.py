"""The workflow over time: a case's records in a database, its files in a content-addressed store."""
