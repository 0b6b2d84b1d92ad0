"""What a collection's STAC metadata says about the cube it loads as: its bands and its dimensions.

Loading (:mod:`processes.data.load`) and the collection documents of ``/collections``
(``backend/catalog.py``) read the same rules from here, so a collection is described exactly as it
loads:

- **Bands** come from ``summaries["eo:bands"]`` matched to ``item_assets``, else from the bands
  dimension of ``cube:dimensions``, else (sources with no band metadata at all) from the items'
  raster data assets, each a band named by its asset key.
- **Time**: a collection has a temporal dimension ``t`` unless its ``cube:dimensions`` declares none,
  or — lacking ``cube:dimensions`` — none of its items has a ``datetime``. STAC items of static
  products (elevation models, land cover of an epoch) give only a ``start_datetime``/``end_datetime``
  validity range with ``datetime: null``; they load as cubes of ``(bands, y, x)``, their tiles
  mosaicked into one surface.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from processes.core.errors import parameter_invalid

BandTable = dict[str, dict[str, Any]]
"""``{band name: {"asset": asset key, "meta": {common_name, center_wavelength, …}}}``, in order."""

_BAND_FIELDS = ("common_name", "center_wavelength", "full_width_half_max")


def collection_bands(metadata: Mapping[str, Any]) -> BandTable:
    """The bands a collection's metadata declares (empty when it declares none).

    Bands come from ``summaries["eo:bands"]`` (or ``bands``) matched to ``item_assets``; assets
    holding one band are addressed by that band's name, others by their key.
    """
    item_assets = metadata.get("item_assets") or {}
    by_band: dict[str, str] = {}
    for key, asset in item_assets.items():
        asset_bands = asset.get("eo:bands") or asset.get("bands") or []
        if len(asset_bands) == 1 and "name" in asset_bands[0]:
            by_band[asset_bands[0]["name"]] = key
    summaries = metadata.get("summaries") or {}
    listed = summaries.get("eo:bands") or summaries.get("bands") or []
    table: BandTable = {}
    for band in listed:
        name = band.get("name")
        if not name:
            continue
        asset = by_band.get(name) or (name if name in item_assets or not item_assets else None)
        if asset is None:
            continue
        meta = {k: band[k] for k in _BAND_FIELDS if k in band}
        table[name] = {"asset": asset, "meta": meta}
    if not table:
        dims = metadata.get("cube:dimensions") or {}
        for dim in dims.values():
            if dim.get("type") == "bands":
                for name in dim.get("values", []):
                    table[name] = {"asset": name, "meta": {}}
    return table


def bands_from_assets(items: Iterable[Mapping[str, Any]]) -> BandTable:
    """Bands of sources without band metadata: each data asset (a raster) is a band named by its key."""
    table: BandTable = {}
    for count, item in enumerate(items):
        if count == 20:
            break
        for key, asset in (item.get("assets") or {}).items():
            roles = asset.get("roles") or ["data"]
            is_raster = "tiff" in (asset.get("type") or "image/tiff") or str(asset.get("href")).lower().endswith(
                (".tif", ".tiff"))
            if "data" in roles and is_raster and key not in table:
                eo = asset.get("eo:bands") or [{}]
                meta = {k: eo[0][k] for k in ("common_name", "center_wavelength") if k in eo[0]}
                table[key] = {"asset": key, "meta": meta}
    return table


def select_bands(collection_id: str, bands: Any, table: BandTable, process: str) -> list[str]:
    """The band names ``bands`` asks for (names or common names; None: all), in the order asked."""
    if bands is None:
        if not table:
            raise parameter_invalid(process, "bands", f"collection '{collection_id}' declares no bands in its metadata.")
        return list(table)
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise parameter_invalid(process, "bands", "expected a non-empty list of band names or null.")
    by_common: dict[str, str] = {}
    for name, info in table.items():
        common = info["meta"].get("common_name")
        if common:
            by_common.setdefault(common, name)
    selected = []
    for band in bands:
        if band in table:
            selected.append(band)
        elif band in by_common:
            selected.append(by_common[band])
        else:
            raise parameter_invalid(
                process, "bands", f"band '{band}' is not in collection '{collection_id}'; it has {', '.join(table)}."
            )
    return selected


def has_time_dimension(metadata: Mapping[str, Any], items: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the collection loads with a temporal dimension (the rule of the module docstring).

    ``items`` are the collection's items (or those a search found) when it has no ``cube:dimensions``.
    """
    dims = metadata.get("cube:dimensions")
    if dims:
        return any(isinstance(dim, Mapping) and dim.get("type") == "temporal" for dim in dims.values())
    found = False
    for item in items:
        if (item.get("properties") or {}).get("datetime"):
            return True
        found = True
    return not found  # no items to tell from: keep the temporal dimension openEO collections usually have
