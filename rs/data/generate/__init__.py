"""Physical phase-field data: a batched solver and the writer of layout-A files."""
