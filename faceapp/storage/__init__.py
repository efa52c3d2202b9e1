"""Storage: the gallery (people and templates in SQLite), its schema, encryption, export/import archives and re-embedding."""
