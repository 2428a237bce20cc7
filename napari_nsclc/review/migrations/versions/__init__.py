"""One module per schema version, oldest first: ``0001`` is the first schema."""
