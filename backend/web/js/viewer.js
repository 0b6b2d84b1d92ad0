// The map viewer's entry point: reads the page's address, puts the tiles on a map and keeps the
// status line up to date. Each concern lives in a module of its own.
import { readQuery } from './query.js';
import { showOnMap, xyzLayer } from './map.js';
import { showProblem, watchTiles } from './status.js';

const status = document.getElementById('status');

try {
  const view = readQuery(window.location.search, window.location.href);
  if (view.title) {
    document.getElementById('title').textContent = view.title;
    document.title = `${view.title} · Terracube`;
  }
  const layer = xyzLayer(view.tiles);
  watchTiles(layer, status); // before the layer joins the map, which starts loading at once
  showOnMap(document.getElementById('map'), layer, view.bounds);
} catch (error) {
  showProblem(status, error.message);
}
