// The status line: whether the tiles in view have loaded, and why not when they failed.
// Its `data-state` (loading, ready, error) lets people's eyes and tests alike tell at a glance.

/** Shows a problem that stops the viewer before any tile is asked for. */
export function showProblem(element, message) {
  show(element, 'error', message);
}

/** Follows the layer's rounds of loading (each pan or zoom starts one) and reports each outcome. */
export function watchTiles(layer, element) {
  let round = 0;
  let loaded = 0;
  let failed = [];
  layer.on('loading', () => {
    round += 1;
    loaded = 0;
    failed = [];
    show(element, 'loading', 'Loading tiles…');
  });
  layer.on('tileload', () => { loaded += 1; });
  layer.on('tileerror', event => { failed.push(event.tile.src); });
  layer.on('load', async () => {
    if (failed.length === 0) {
      show(element, 'ready', `${loaded} ${loaded === 1 ? 'tile' : 'tiles'} shown`);
      return;
    }
    const thisRound = round;
    const count = `${failed.length} of ${failed.length + loaded} tiles failed`;
    show(element, 'error', `${count}…`);
    const reason = await whyTileFailed(failed[0]);
    if (thisRound === round) {
      show(element, 'error', `${count}: ${reason}`);
    }
  });
}

// An <img> that fails to load tells nothing of why: ask for the tile again and read the answer,
// an openEO error document for the back-end's tiles.
async function whyTileFailed(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    return `the tile server could not be reached (${error.message})`;
  }
  if (response.ok) {
    return `HTTP ${response.status} ${response.headers.get('Content-Type') || ''}, but not an image the browser can show`;
  }
  let message = response.statusText;
  try {
    message = (await response.json()).message || message;
  } catch {
    // not JSON: the status says all we know
  }
  return `HTTP ${response.status}${message ? ` ${message}` : ''}`;
}

function show(element, state, text) {
  element.dataset.state = state;
  element.textContent = text;
}
