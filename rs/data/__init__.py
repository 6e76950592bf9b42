"""Phase-field data: layouts, the generator, validation, and the Ray Data source."""
