// The web map: Leaflet (plain <img> tiles, no WebGL, so it draws in any browser) in WebMercatorQuad,
// the tiling of openEO's XYZ services.
import { map as leafletMap, tileLayer } from 'leaflet';

/** A layer of 256-pixel tiles from an XYZ URL template. */
export function xyzLayer(template) {
  return tileLayer(template, {
    maxZoom: 22,
    attribution: 'tiles: <a href="https://openeo.org">openEO</a> service of Terracube',
  });
}

/**
 * Puts the layer on a new map in `element`, centred on `bounds` ([[south, west], [north, east]])
 * or showing the whole world.
 */
export function showOnMap(element, layer, bounds) {
  const map = leafletMap(element, { worldCopyJump: true });
  if (bounds) {
    map.fitBounds(bounds);
  } else {
    map.fitWorld();
  }
  layer.addTo(map);
  return map;
}
