"""Writing one band as a Cloud-Optimized GeoTIFF, the way the demo products store all their rasters.

GDAL's COG driver (bundled in the rasterio wheels) lays out tiles and overviews itself; rasterio feeds it
from an in-memory dataset, so numpy arrays go straight to disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.crs import CRS

from backend.demo.grid import DEMO_EPSG, Grid

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
COG_BLOCKSIZE = 256


def write_cog(
    path: Path, data: npt.NDArray[np.generic], grid: Grid, *, nodata: float, description: str,
    resampling: str, epsg: int = DEMO_EPSG,
) -> Path:
    """Write the 2-D ``data`` on ``grid`` to ``path`` as a single-band COG.

    ``resampling`` builds the overviews: ``"average"`` for measurements, ``"nearest"`` for classes.
    """
    if data.shape != grid.shape:
        raise ValueError(f"cannot write {path.name}: data is {data.shape} but the grid is {grid.shape}")
    with rasterio.open(
        path, "w", driver="COG", width=grid.width, height=grid.height, count=1, dtype=data.dtype,
        crs=CRS.from_epsg(epsg), transform=grid.transform, nodata=nodata,
        compress="DEFLATE", predictor=2, blocksize=COG_BLOCKSIZE,
        overview_resampling=resampling, overview_count=overview_count(grid),
    ) as dst:
        dst.write(data, 1)
        dst.set_band_description(1, description)
    return path


def overview_count(grid: Grid) -> int:
    """Halvings until the image fits one block, and at least one, so every file has an overview to test
    and for XYZ tiles to read."""
    count, size = 0, max(grid.width, grid.height)
    while size > COG_BLOCKSIZE:
        size = (size + 1) // 2
        count += 1
    return max(count, 1)
