"""Storage tests: the gallery, its schema and archives."""
