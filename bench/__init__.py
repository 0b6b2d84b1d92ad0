"""Benchmarks against direct rasterio + numpy baselines (see bench/__main__.py)."""
