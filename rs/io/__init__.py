"""Run outputs: hot (background writer), warm (per-run consolidation) and cold (Parquet catalog)."""
