// What the viewer shows, read from its address:
//   ?tiles=<XYZ template with {z}, {x}, {y}>   (required; url-encoded, or as it is as the last parameter)
//   &bounds=west,south,east,north                         (degrees; default: the whole world)
//   &title=<text>                                         (optional)

const EXAMPLE = '/viewer?tiles=' + encodeURIComponent('https://…/tiles/{z}/{x}/{y}.png') + '&bounds=10.3,45.4,10.4,45.5';

/**
 * @param {string} search - `location.search`
 * @param {string} base - the page's own address, for relative templates
 * @returns {{tiles: string, bounds: ?[[number, number], [number, number]], title: ?string}}
 *   `bounds` as Leaflet takes them: [[south, west], [north, east]]
 */
export function readQuery(search, base) {
  const query = new URLSearchParams(search);
  return {
    tiles: tileTemplate(query.get('tiles'), base),
    bounds: query.has('bounds') ? boundsOf(query.get('bounds')) : null,
    title: query.get('title'),
  };
}

function tileTemplate(template, base) {
  if (!template) {
    throw new Error(`Which tiles? Give their URL template in the address, e.g. ${EXAMPLE}`);
  }
  const missing = ['{z}', '{x}', '{y}'].filter(part => !template.includes(part));
  if (missing.length) {
    throw new Error(`The tile URL template lacks ${missing.join(', ')}: ${template}`);
  }
  let url;
  try {
    url = new URL(template, base);
  } catch {
    throw new Error(`The tile URL template is not a URL: ${template}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`The tile URL must be http or https, not ${url.protocol}`);
  }
  // URL() escapes the braces; Leaflet needs them as they are
  return url.href.replaceAll('%7B', '{').replaceAll('%7D', '}');
}

function boundsOf(text) {
  const numbers = text.split(',').map(Number);
  const [west, south, east, north] = numbers;
  const valid = numbers.length === 4 && numbers.every(Number.isFinite)
    && west < east && south < north && west >= -180 && east <= 180 && south >= -90 && north <= 90;
  if (!valid) {
    throw new Error(`'bounds' must be west,south,east,north in degrees (west < east, south < north), got '${text}'`);
  }
  return [[south, west], [north, east]];
}
