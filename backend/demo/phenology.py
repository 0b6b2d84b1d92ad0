"""Seasonal NDVI curves: what each crop and each background land cover looks like through the year.

A curve is a base level plus a sum of double-logistic *seasons* in day-of-year (green-up with one logistic,
senescence or harvest with another). This is the model phenology tools fit to real NDVI series, so a
time series drawn from the demo data has the shape users expect (wheat peaking in May, maize in July, a
mown meadow dipping after each cut), and tests can compare pixels against the curve that painted them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# A rise or fall this far outside the year never happens: it turns a season into a plain step.
_ALWAYS = -10_000.0
_NEVER = 10_000.0


@dataclass(frozen=True)
class Season:
    """One green-up and decline: ``amplitude * (logistic(rise) - logistic(fall))``."""

    amplitude: float
    """NDVI added at the season's peak; negative for a dip (a meadow after mowing)."""

    rise_doy: float
    """Day of year at the middle of green-up."""

    rise_days: float
    """Steepness of green-up: days for the logistic to go from 27 % to 73 %."""

    fall_doy: float
    """Day of year at the middle of senescence or harvest."""

    fall_days: float
    """Steepness of the decline."""

    def __call__(self, doy: FloatArray) -> FloatArray:
        return self.amplitude * (_logistic((doy - self.rise_doy) / self.rise_days)
                                 - _logistic((doy - self.fall_doy) / self.fall_days))


@dataclass(frozen=True)
class NdviCurve:
    """NDVI as a function of day of year."""

    base: float
    """NDVI outside every season (bare soil, winter stubble, dormant grass)."""

    seasons: tuple[Season, ...]
    """Seasons added on top of ``base``."""

    def __call__(self, doy: float | npt.ArrayLike) -> FloatArray:
        t = np.asarray(doy, dtype=np.float64)
        value = np.full_like(t, self.base)
        for season in self.seasons:
            value = value + season(t)
        return value


def _logistic(z: FloatArray) -> FloatArray:
    # exp overflows to inf for very negative z, which still gives the right limit (0) without a warning
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


CROP_CURVES: dict[str, NdviCurve] = {
    # Sown in October: green through winter, peak in May, harvested late June, re-emerges in autumn.
    "winter_wheat": NdviCurve(0.20, (
        Season(0.15, _ALWAYS, 1.0, 172.0, 6.0),
        Season(0.50, 80.0, 10.0, 165.0, 7.0),
        Season(0.15, 300.0, 12.0, _NEVER, 1.0),
    )),
    # Bare until May, closed canopy July-August, harvested end of September.
    "maize": NdviCurve(0.18, (Season(0.67, 155.0, 9.0, 255.0, 8.0),)),
    # Emerges in April, stays green long, lifted in October.
    "sugar_beet": NdviCurve(0.18, (Season(0.68, 135.0, 10.0, 285.0, 10.0),)),
    # Green all year, three cuts that each drop NDVI for a couple of weeks.
    "grassland": NdviCurve(0.42, (
        Season(0.36, 85.0, 12.0, 320.0, 15.0),
        Season(-0.25, 148.0, 2.0, 163.0, 5.0),
        Season(-0.22, 198.0, 2.0, 212.0, 5.0),
        Season(-0.20, 250.0, 2.0, 264.0, 5.0),
    )),
    # Grassy inter-rows all year; vine canopy from May to leaf fall in October.
    "vineyard": NdviCurve(0.30, (Season(0.30, 125.0, 10.0, 292.0, 10.0),)),
}
"""NDVI curve of each crop; the keys are the ``crop`` values of the demo parcels."""

CROP_SHARES: dict[str, float] = {
    "maize": 0.30, "winter_wheat": 0.25, "grassland": 0.20, "sugar_beet": 0.10, "vineyard": 0.15,
}
"""How often each crop is drawn for a parcel."""

LAND_COVER_CURVES: dict[str, NdviCurve] = {
    # Mixed deciduous/coniferous: high all year, higher in leaf.
    "forest": NdviCurve(0.62, (Season(0.24, 110.0, 10.0, 295.0, 12.0),)),
    # Field margins and unmanaged grass between the parcels.
    "meadow": NdviCurve(0.45, (Season(0.30, 90.0, 12.0, 310.0, 15.0),)),
    "urban": NdviCurve(0.10, ()),
    "bare": NdviCurve(0.16, ()),
    "water": NdviCurve(-0.30, ()),
}
"""NDVI curve of each background land cover."""


def crop_ndvi(crop: str, doy: float | npt.ArrayLike) -> FloatArray:
    """The design NDVI of ``crop`` on day of year ``doy`` (before per-parcel variation)."""
    try:
        curve = CROP_CURVES[crop]
    except KeyError:
        raise ValueError(f"unknown crop {crop!r}; the demo crops are {', '.join(CROP_CURVES)}") from None
    return curve(doy)
