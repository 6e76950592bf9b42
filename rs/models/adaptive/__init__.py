"""Adaptive region selection (registry keyed by `adaptive.region_selector`) and patch sampling."""

from rs.models.adaptive.selectors import REGION_SELECTORS, Regions, sample_patches

__all__ = ["REGION_SELECTORS", "Regions", "sample_patches"]
