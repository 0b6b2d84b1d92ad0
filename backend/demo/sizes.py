"""How much demo data to generate: the named sizes behind ``terracube demo --size``.

A size fixes everything that shapes the output (grid, dates, parcel count, random seed), so one size name
always produces the same pixels. The generator records the name in the catalog and skips work when it finds
its own output for the same size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


def every_n_days(start: date, count: int, step_days: int) -> tuple[date, ...]:
    """``count`` acquisition dates, ``step_days`` apart, starting at ``start``."""
    return tuple(start + timedelta(days=step_days * i) for i in range(count))


@dataclass(frozen=True)
class DemoSize:
    """The dimensions of one demo data set."""

    name: str
    """Name used on the command line and stored in the catalog (``terracube:demo_size``)."""

    tile_px: int
    """Width and height of one tile in 10 m pixels; the 20 m bands have ``tile_px // 2``. Must be even."""

    n_tiles: int
    """Number of tiles, laid side by side west to east in the same UTM zone."""

    dates: tuple[date, ...]
    """Acquisition dates; each tile gets one item per date (sensing time 10:30 UTC)."""

    n_parcels: int
    """Number of agricultural parcels spread over all tiles."""

    seed: int
    """Seed of every random draw; with the other fields it fully determines the output."""

    def __post_init__(self) -> None:
        if self.tile_px <= 0 or self.tile_px % 2:
            raise ValueError(f"tile_px must be a positive even number (10 m and 20 m grids), got {self.tile_px}")
        if self.n_tiles < 1 or not self.dates or self.n_parcels < 0:
            raise ValueError(f"demo size {self.name!r} needs at least one tile, one date and n_parcels >= 0")

    @property
    def n_items(self) -> int:
        """Number of Sentinel-2 items: one per tile and date."""
        return self.n_tiles * len(self.dates)


# The same 24 dates for every size, so a bench run and the small default differ only in area and parcels.
_DATES_2023 = every_n_days(date(2023, 1, 5), count=24, step_days=15)

DEMO_SIZES: dict[str, DemoSize] = {
    "small": DemoSize(name="small", tile_px=512, n_tiles=2, dates=_DATES_2023, n_parcels=200, seed=20230105),
    "bench": DemoSize(name="bench", tile_px=3072, n_tiles=2, dates=_DATES_2023, n_parcels=10_000, seed=20230105),
}


def demo_size(size: str | DemoSize) -> DemoSize:
    """Look up a size by name (a ``DemoSize`` passes through unchanged)."""
    if isinstance(size, DemoSize):
        return size
    try:
        return DEMO_SIZES[size]
    except KeyError:
        raise ValueError(
            f"unknown demo size {size!r}; choose one of: {', '.join(DEMO_SIZES)}"
        ) from None
