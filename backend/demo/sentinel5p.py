"""A Sentinel-5P L3-like product: daily gridded trace-gas columns over northern Italy.

``DEMO_SENTINEL5P_L3``: one item per day of January 2023 on an EPSG:4326 grid of 0.05° (lon 6.5–14°,
lat 43.5–47°, the Alps to the Apennines, around the Sentinel-2 scene), bands as float32 COGs:

- ``NO2``: tropospheric vertical column (mol/m²): plumes downwind of the cities (Milan, Turin,
  Brescia, Bergamo, Verona, Padua–Venice, Bologna, Genoa) and along the motorways between them,
  pooled over the Po valley in calm winter weather, lower on Sundays, clean over the Alps;
- ``CO``: total column (mol/m²): a smooth background, city enhancements and, mid-month, a plume of
  transported fire smoke drifting east across the region;
- ``CH4``: column-averaged dry-air mixing ratio (ppb): ~1920 ppb with the agricultural Po valley higher;
- ``QA``: quality value (0–1) of the retrieval, as TROPOMI's ``qa_value``.

Gaps (NaN) where a day's orbits leave a stripe uncovered (NaN in every band, QA included) and where
clouds spoil the retrieval (QA low): NO2 needs QA ≥ 0.75, CO ≥ 0.5 (it is retrieved over clouds),
CH4 ≥ 0.9 (clear sky only), so CH4 has the fewest valid pixels, as in the real product.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from backend.demo.cog import write_cog
from backend.demo.grid import Grid
from backend.demo.noise import rng_for, smooth_noise

S5P_COLLECTION = "DEMO_SENTINEL5P_L3"
S5P_GRID = Grid(x_min=6.5, y_max=47.0, resolution=0.05, width=150, height=70)
S5P_FIRST_DAY = date(2023, 1, 1)
S5P_DAYS = 31


@dataclass(frozen=True)
class S5PBand:
    """One band of the product, with the metadata its STAC asset carries."""

    name: str
    unit: str
    description: str
    min_qa: float
    """Pixels with a lower quality value are no data in this band (0 for the quality band itself)."""


S5P_BANDS: tuple[S5PBand, ...] = (
    S5PBand("CO", "mol/m2", "Carbon monoxide total column (mol/m²)", 0.5),
    S5PBand("NO2", "mol/m2", "Nitrogen dioxide tropospheric vertical column (mol/m²)", 0.75),
    S5PBand("CH4", "ppb", "Methane column-averaged dry-air mixing ratio (ppb)", 0.9),
    S5PBand("QA", "1", "Quality value of the retrieval, 0 (unusable) to 1 (best)", 0.0),
)

CITIES: tuple[tuple[str, float, float, float], ...] = (
    # name, lon, lat, relative NO2 emission
    ("Milan", 9.19, 45.46, 1.0), ("Turin", 7.69, 45.07, 0.6), ("Brescia", 10.21, 45.54, 0.35),
    ("Bergamo", 9.67, 45.70, 0.3), ("Verona", 10.99, 45.44, 0.3), ("Padua", 11.88, 45.41, 0.35),
    ("Venice-Mestre", 12.24, 45.49, 0.35), ("Bologna", 11.34, 44.49, 0.45), ("Genoa", 8.93, 44.41, 0.35),
)
MOTORWAYS: tuple[tuple[str, ...], ...] = (
    ("Turin", "Milan", "Bergamo", "Brescia", "Verona", "Padua", "Venice-Mestre"),  # A4
    ("Milan", "Bologna"),  # A1
    ("Genoa", "Milan"),  # A7
    ("Verona", "Bologna"),  # A22
)


@dataclass(frozen=True)
class S5PDay:
    """The written rasters of one day."""

    item_id: str
    day: date
    files: dict[str, Path]
    valid_share: dict[str, float]
    """Share of the grid's pixels with a value, per band."""

    @property
    def start(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)


def write_s5p(seed: int, out_dir: Path) -> list[S5PDay]:
    """Render and write every day under ``out_dir/DEMO_SENTINEL5P_L3/<item>/``."""
    lon, lat = _centres()
    static = _static_fields(lon, lat)
    days = []
    for index in range(S5P_DAYS):
        day = S5P_FIRST_DAY + timedelta(days=index)
        bands = render_day(seed, index, day, lon, lat, static)
        item_id = f"S5P_DEMO_L3_{day:%Y%m%d}"
        item_dir = out_dir / S5P_COLLECTION / item_id
        item_dir.mkdir(parents=True, exist_ok=True)
        files = {
            band.name: write_cog(item_dir / f"{item_id}_{band.name}.tif", bands[band.name], S5P_GRID,
                                 nodata=float("nan"), description=band.description, resampling="average",
                                 epsg=4326)
            for band in S5P_BANDS
        }
        share = {name: float(np.isfinite(values).mean()) for name, values in bands.items()}
        days.append(S5PDay(item_id, day, files, share))
    return days


def _centres() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    cols = S5P_GRID.x_min + (np.arange(S5P_GRID.width) + 0.5) * S5P_GRID.resolution
    rows = S5P_GRID.y_max - (np.arange(S5P_GRID.height) + 0.5) * S5P_GRID.resolution
    lon, lat = np.meshgrid(cols, rows)
    return lon, lat


@dataclass(frozen=True)
class _StaticFields:
    alps: npt.NDArray[np.float64]
    """0 in the plain, 1 high in the Alps and Apennines (clean, thin air column)."""
    po_valley: npt.NDArray[np.float64]
    """1 in the Po valley basin, falling off towards the mountains."""
    roads: npt.NDArray[np.float64]
    """Closeness to a motorway, 1 on it."""


def _static_fields(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> _StaticFields:
    # The Po valley: a basin bounded by the Alps to the north and west and the Apennines to the south.
    alps = np.clip((lat - 45.75 - 0.25 * np.cos((lon - 7.0) / 2.0)) / 0.5, 0.0, 1.0)
    alps = np.maximum(alps, np.clip((7.5 - lon) / 0.6, 0.0, 1.0))
    apennines = np.clip((44.65 + 0.12 * (lon - 8.0) - lat) / 0.35, 0.0, 1.0) * np.clip((12.6 - lon) / 0.5, 0.0, 1.0)
    mountains = np.maximum(alps, apennines)
    po_valley = (1.0 - mountains) * np.clip((12.6 - lon) / 0.6, 0.0, 1.0)
    by_name = {name: (x, y) for name, x, y, _ in CITIES}
    distance = np.full(lon.shape, np.inf)
    for route in MOTORWAYS:
        for a, b in zip(route[:-1], route[1:], strict=True):
            distance = np.minimum(distance, _segment_distance(lon, lat, by_name[a], by_name[b]))
    roads = np.exp(-((distance / 0.06) ** 2))
    return _StaticFields(mountains, po_valley, roads)


def _segment_distance(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64],
                      a: tuple[float, float], b: tuple[float, float]) -> npt.NDArray[np.float64]:
    """Distance in degrees (longitude scaled to ground distance at 45° N) from each point to segment a–b."""
    k = np.cos(np.radians(45.0))
    px, py = (lon - a[0]) * k, lat - a[1]
    dx, dy = (b[0] - a[0]) * k, b[1] - a[1]
    t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(px - t * dx, py - t * dy)


def render_day(seed: int, index: int, day: date, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64],
               static: _StaticFields) -> dict[str, npt.NDArray[np.float32]]:
    """All bands of one day, NaN where there is no valid retrieval."""
    rng = rng_for(seed, "s5p", index)
    shape = lon.shape
    # The day's weather: a wind (degrees per day of plume travel) and how stagnant the air is.
    wind = rng.normal([0.6, 0.1], [0.8, 0.5])
    stagnation = float(np.clip(rng.normal(0.6, 0.25), 0.1, 1.0))  # 1: calm, pollution pools in the valley
    weekday = 0.65 if day.weekday() == 6 else 0.85 if day.weekday() == 5 else 1.0

    plumes = np.zeros(shape)
    for _name, x, y, strength in CITIES:
        plumes += strength * _plume(lon, lat, (x, y), wind, 0.12 + 0.1 * stagnation)
    no2 = 1.2e-5 + 1.5e-4 * weekday * (plumes + 0.25 * static.roads) + 3.0e-5 * stagnation * static.po_valley
    no2 *= (1.0 - 0.7 * static.alps) * (1.0 + 0.08 * smooth_noise(rng, shape, 6.0))
    no2 += rng.normal(0.0, 4e-6, shape)  # retrieval noise: small columns can come out negative

    co = 0.030 + 0.004 * static.po_valley * stagnation + 0.004 * plumes - 0.008 * static.alps
    co += 0.012 * _smoke(lon, lat, index) + 0.0015 * smooth_noise(rng, shape, 10.0)
    ch4 = 1918.0 + 14.0 * static.po_valley - 10.0 * static.alps + 3.0 * smooth_noise(rng, shape, 12.0)
    ch4 += rng.normal(0.0, 4.0, shape)

    clouds = smooth_noise(rng, shape, 7.0) + float(rng.normal(0.0, 0.8))  # some days overcast, some clear
    qa = np.clip(0.95 - 0.35 * np.clip(clouds, 0.0, None) + rng.normal(0.0, 0.02, shape), 0.0, 1.0)
    covered = _orbit_coverage(rng, lon, lat)
    values = {"CO": co, "NO2": no2, "CH4": ch4, "QA": qa}
    out = {}
    for band in S5P_BANDS:
        data = values[band.name].astype(np.float32)
        data[~covered | (qa < band.min_qa)] = np.nan
        out[band.name] = data
    return out


def _plume(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], source: tuple[float, float],
           wind: npt.NDArray[np.float64], spread: float) -> npt.NDArray[np.float64]:
    """A source's column, 1 at its peak: a Gaussian stretched and carried downwind."""
    k = np.cos(np.radians(source[1]))
    dx, dy = (lon - source[0]) * k, lat - source[1]
    speed = float(np.hypot(*wind)) + 1e-6
    ux, uy = wind[0] / speed, wind[1] / speed
    along, across = dx * ux + dy * uy, -dx * uy + dy * ux
    length = spread + 0.25 * speed  # stronger wind, longer and thinner plume
    centre = 0.3 * speed * spread
    return np.exp(-(((along - centre) / length) ** 2) - (across / (spread * 0.8)) ** 2)


def _smoke(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], index: int) -> npt.NDArray[np.float64]:
    """A plume of transported fire smoke, entering from the west on day 12 and leaving east by day 18."""
    if not 11 <= index <= 18:
        return np.zeros(lon.shape)
    x = 5.5 + 1.4 * (index - 11)
    y = 45.9 - 0.15 * (index - 11)
    age = index - 11
    return np.exp(-(((lon - x) / (0.9 + 0.15 * age)) ** 2) - ((lat - y) / (0.45 + 0.05 * age)) ** 2)


def _orbit_coverage(rng: np.random.Generator, lon: npt.NDArray[np.float64],
                    lat: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Where the day's orbits observed: on about one day in three a stripe between two swaths is missing.

    Sentinel-5P flies ascending over Europe at 13:30 local time on tracks heading north-north-west.
    """
    if rng.random() > 0.35:
        return np.ones(lon.shape, dtype=bool)
    across = lon + 0.2 * (lat - 45.0)
    edge = rng.uniform(6.5, 13.5)
    width = rng.uniform(0.4, 1.2)
    return ~((across > edge) & (across < edge + width))

