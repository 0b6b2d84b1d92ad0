"""Two elevation models of the demo area, as a DEM explorer compares them: SRTM-like and EU-DEM-like.

One *true* terrain is drawn on a 40 m UTM grid around the Sentinel-2 scene (the Po plain between
Brescia and Cremona: 40–120 m, sloping down to the south-east, a broad river valley where the
scene's river meanders, low morainic hills to the north). Each product samples it on its own grid
and adds the errors that set the real products apart:

- ``DEMO_DEM_SRTM30`` (SRTM GL1-like): EPSG:4326 at 1 arc-second (~22 × 31 m here), int16 metres with
  nodata −32768, ±2.5 m noise, and voids (radar shadow and phase-unwrapping gaps) in scattered
  patches; two tiles side by side, to be mosaicked.
- ``DEMO_DEM_EUDEM25`` (EU-DEM v1.1-like): EPSG:3035 (LAEA Europe) at 25 m, float32, void-filled and
  smoother (a fusion of SRTM and ASTER, here a Gaussian blur of one pixel), shifted by about one
  pixel (20 m east, 12 m south: its co-registration error) and 1.5 m higher on average.

So the difference of the two shows what it does for the real pair: noise and holes, and ridges and
valleys along slopes from the shift and the smoothing. Both cover the whole Sentinel-2 scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pyproj import Transformer
from scipy import ndimage

from backend.demo.cog import write_cog
from backend.demo.grid import DEMO_EPSG, Grid
from backend.demo.noise import rng_for, smooth_noise

SRTM_COLLECTION = "DEMO_DEM_SRTM30"
EUDEM_COLLECTION = "DEMO_DEM_EUDEM25"
DEM_BAND = "DEM"
"""The one band of both collections (as in the shared real ``DEM`` collection): elevation in metres."""

SRTM_NODATA = -32768
EUDEM_NODATA = -9999.0
EUDEM_EPSG = 3035

TRUTH = Grid(x_min=594_000.0, y_max=5_046_000.0, resolution=40.0, width=550, height=400)
"""The true terrain's grid in UTM 32N: E 594–616 km, N 5030–5046 km, around the scene (E 600–610 km)."""

ARC_SECOND = 1.0 / 3600.0
SRTM_TILES = ((10.23, 10.35), (10.35, 10.47))
"""West and east edges (degrees) of the SRTM-like tiles; both span the latitudes below."""
SRTM_LATITUDES = (45.42, 45.55)

EUDEM_SHIFT = (20.0, -12.0)
"""Where the EU-DEM-like surface samples the truth, relative to its pixel centres (metres east, north)."""
EUDEM_BIAS = 1.5


@dataclass(frozen=True)
class DemTile:
    """One written DEM raster, with what its STAC item needs."""

    collection: str
    item_id: str
    path: Path
    grid: Grid
    """Its pixel grid, in ``epsg`` units (degrees for EPSG:4326)."""
    epsg: int
    data_type: str
    nodata: float
    start: datetime
    end: datetime
    """The acquisition period of the source data (DEMs have no single date)."""
    title: str


SRTM_PERIOD = (datetime(2000, 2, 11, tzinfo=UTC), datetime(2000, 2, 22, tzinfo=UTC))
"""The Shuttle Radar Topography Mission."""
EUDEM_PERIOD = (datetime(2000, 2, 11, tzinfo=UTC), datetime(2011, 12, 31, tzinfo=UTC))
"""SRTM and ASTER GDEM acquisitions fused into EU-DEM."""


def write_dems(seed: int, out_dir: Path) -> list[DemTile]:
    """Draw the true terrain of ``seed`` and write both products under ``out_dir/<collection>/<item>/``."""
    truth = true_terrain(seed)
    tiles = [_write_srtm_tile(seed, truth, index, out_dir) for index in range(len(SRTM_TILES))]
    tiles.append(_write_eudem(truth, out_dir))
    return tiles


def true_terrain(seed: int) -> npt.NDArray[np.float32]:
    """Elevation in metres on :data:`TRUTH` (rows north to south)."""
    rng = rng_for(seed, "terrain")
    east = TRUTH.x_min + (np.arange(TRUTH.width) + 0.5) * TRUTH.resolution
    north = TRUTH.y_max - (np.arange(TRUTH.height) + 0.5) * TRUTH.resolution
    e, n = np.meshgrid(east - 605_000.0, north - 5_038_000.0)
    plain = 72.0 + 0.004 * n - 0.0012 * e  # the Po plain falls ~4 m/km southwards, ~1 m/km eastwards
    undulation = 2.5 * smooth_noise(rng, TRUTH.shape, 1_500.0 / TRUTH.resolution)  # fans and old channels
    undulation += 0.8 * smooth_noise(rng, TRUTH.shape, 200.0 / TRUTH.resolution)  # embankments, scarps
    # The valley of the scene's river (which meanders around 62 % down the scene): a terraced trough.
    centre = -1_174.0 + 500.0 * np.sin(2 * np.pi * e / 9_000.0)
    valley = -7.0 / (1.0 + np.exp((np.abs(n - centre) - 1_300.0) / 120.0))
    # Morainic hills rising to the north, up to ~100 m above the plain.
    ridges = smooth_noise(rng, TRUTH.shape, 2_200.0 / TRUTH.resolution)
    hills = np.clip(ridges + 0.45 * smooth_noise(rng, TRUTH.shape, 600.0 / TRUTH.resolution), 0.0, None) ** 1.5
    northward = np.clip((n - 1_500.0) / 5_000.0, 0.0, 1.0)
    terrain = plain + undulation + valley + 25.0 * hills * northward
    return terrain.astype(np.float32)


def srtm_grid(index: int) -> Grid:
    """The EPSG:4326 1″ grid of SRTM-like tile ``index`` (west to east)."""
    west, east = SRTM_TILES[index]
    south, north = SRTM_LATITUDES
    return Grid(west, north, ARC_SECOND, round((east - west) * 3600), round((north - south) * 3600))


def eudem_grid() -> Grid:
    """The EPSG:3035 25 m grid of the EU-DEM-like surface: inside the truth, on whole 25 m steps."""
    to_laea = _transformer(DEMO_EPSG, EUDEM_EPSG)
    inner = (TRUTH.x_min + 1_000, TRUTH.y_max - TRUTH.height * TRUTH.resolution + 1_000,
             TRUTH.x_min + TRUTH.width * TRUTH.resolution - 1_000, TRUTH.y_max - 1_000)
    xs, ys = to_laea.transform([inner[0], inner[2], inner[2], inner[0]], [inner[1], inner[1], inner[3], inner[3]])
    west, east = np.ceil(max(xs[0], xs[3]) / 25) * 25, np.floor(min(xs[1], xs[2]) / 25) * 25
    south, north = np.ceil(max(ys[0], ys[1]) / 25) * 25, np.floor(min(ys[2], ys[3]) / 25) * 25
    return Grid(float(west), float(north), 25.0, int((east - west) // 25), int((north - south) // 25))


def _sample(truth: npt.NDArray[np.float32], grid: Grid, epsg: int,
            shift: tuple[float, float] = (0.0, 0.0)) -> npt.NDArray[np.float32]:
    """The truth at the pixel centres of ``grid`` (in ``epsg``) moved by ``shift`` metres, bilinearly.

    Pixel centres are projected on a lattice of every 16th pixel and interpolated in between: over a
    few km the projection is linear to well under a centimetre, and projecting every pixel costs more
    than everything else here.
    """
    step = 16
    lattice_cols = np.arange(0, grid.width + step, step, dtype=np.float64)
    lattice_rows = np.arange(0, grid.height + step, step, dtype=np.float64)
    x, y = np.meshgrid(grid.x_min + (lattice_cols + 0.5) * grid.resolution,
                       grid.y_max - (lattice_rows + 0.5) * grid.resolution)
    east, north = _transformer(epsg, DEMO_EPSG).transform(x, y)
    rows, cols = np.meshgrid(np.arange(grid.height) / step, np.arange(grid.width) / step, indexing="ij")
    east = ndimage.map_coordinates(np.asarray(east), [rows, cols], order=1)
    north = ndimage.map_coordinates(np.asarray(north), [rows, cols], order=1)
    col = (east + shift[0] - TRUTH.x_min) / TRUTH.resolution - 0.5
    row = (TRUTH.y_max - north - shift[1]) / TRUTH.resolution - 0.5
    return ndimage.map_coordinates(truth, [row, col], order=1, mode="nearest").astype(np.float32)


@lru_cache(maxsize=8)
def _transformer(source: int, target: int) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def _write_srtm_tile(seed: int, truth: npt.NDArray[np.float32], index: int, out_dir: Path) -> DemTile:
    grid = srtm_grid(index)
    rng = rng_for(seed, "srtm", index)
    surface = _sample(truth, grid, 4326) + rng.normal(0.0, 2.5, grid.shape).astype(np.float32)
    # Voids: about 1 % of the pixels, in patches up to a few hundred metres across.
    voids = smooth_noise(rng, grid.shape, 12.0) > 2.3
    data = np.round(surface).astype(np.int16)
    data[voids] = SRTM_NODATA
    west = SRTM_TILES[index][0]
    item_id = f"SRTM30_DEMO_N45E010_{'W' if index == 0 else 'E'}"
    path = _item_dir(out_dir, SRTM_COLLECTION, item_id) / f"{item_id}_{DEM_BAND}.tif"
    write_cog(path, data, grid, nodata=SRTM_NODATA, description="elevation (m)", resampling="average", epsg=4326)
    return DemTile(SRTM_COLLECTION, item_id, path, grid, 4326, "int16", SRTM_NODATA, *SRTM_PERIOD,
                   title=f"SRTM-like 1 arc-second elevation from {west:.2f} E (synthetic demo)")


def _write_eudem(truth: npt.NDArray[np.float32], out_dir: Path) -> DemTile:
    grid = eudem_grid()
    surface = ndimage.gaussian_filter(_sample(truth, grid, EUDEM_EPSG, EUDEM_SHIFT), 1.0) + EUDEM_BIAS
    data = np.round(surface, 2).astype(np.float32)
    item_id = "EUDEM25_DEMO_E43N24"
    path = _item_dir(out_dir, EUDEM_COLLECTION, item_id) / f"{item_id}_{DEM_BAND}.tif"
    write_cog(path, data, grid, nodata=EUDEM_NODATA, description="elevation (m)", resampling="average",
              epsg=EUDEM_EPSG)
    return DemTile(EUDEM_COLLECTION, item_id, path, grid, EUDEM_EPSG, "float32", EUDEM_NODATA, *EUDEM_PERIOD,
                   title="EU-DEM-like 25 m elevation (synthetic demo)")


def _item_dir(out_dir: Path, collection: str, item_id: str) -> Path:
    path = out_dir / collection / item_id
    path.mkdir(parents=True, exist_ok=True)
    return path
