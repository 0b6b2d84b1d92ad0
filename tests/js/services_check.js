// The calls of the openEO web editor's "Web Services" tab, made with its client library
// (@openeo/js-client) against a live server, for one service type (XYZ or WMTS).
// Usage: node services_check.js URL USER PASSWORD TYPE  — prints one JSON line with what it saw.
// Each public URL is also fetched without credentials, as the editor's map does.
const { OpenEO } = require('@openeo/js-client');

const WEST = 10.33, SOUTH = 45.47, EAST = 10.36, NORTH = 45.49; // inside DEMO_SENTINEL2_L2A
const FEATURES = ['listServiceTypes', 'listServices', 'createService', 'describeService', 'updateService',
  'deleteService', 'debugService'];

// The XYZ tile (z, x, y) holding a point, and the one at the extent's centre on zoom 14.
function tileOf(lon, lat, z) {
  const n = 2 ** z;
  const rad = lat * Math.PI / 180;
  return {
    z,
    x: Math.floor((lon + 180) / 360 * n),
    y: Math.floor((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2 * n),
  };
}
const CENTRE = tileOf((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14);

// Where a web map finds one tile of the service: the XYZ template filled in, or the WMTS
// capabilities' tile template (its ResourceURL) filled in.
async function tileUrl(service) {
  if (service.type === 'XYZ') {
    return service.url.replace('{z}', CENTRE.z).replace('{x}', CENTRE.x).replace('{y}', CENTRE.y);
  }
  const capabilities = await (await fetch(service.url)).text();
  const template = /<ResourceURL[^>]*resourceType="tile"[^>]*template="([^"]+)"/.exec(capabilities)[1];
  return template.replaceAll('&amp;', '&').replace('{TileMatrixSet}', 'WebMercatorQuad')
    .replace('{Style}', 'default').replace('{TileMatrix}', CENTRE.z).replace('{TileCol}', CENTRE.x)
    .replace('{TileRow}', CENTRE.y);
}

async function answer(url) {
  const response = await fetch(url);
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, type: response.headers.get('content-type'), bytes: body.length,
    text: response.ok && !response.headers.get('content-type').startsWith('image/') ? body.toString() : undefined };
}

(async () => {
  const [url, user, password, type] = process.argv.slice(2);
  const con = await OpenEO.connect(url);
  const caps = con.capabilities();
  const out = { features: Object.fromEntries(FEATURES.map(f => [f, caps.hasFeature(f)])) };
  await con.authenticateBasic(user, password);
  const types = await con.listServiceTypes();
  out.service_types = Object.keys(types);
  if (!types[type]) {
    console.log(JSON.stringify(out));
    return;
  }
  out.configuration_settings = Object.keys(types[type].configuration || {});

  const b = await con.buildProcess();
  const cube = b.load_collection('DEMO_SENTINEL2_L2A', { west: WEST, south: SOUTH, east: EAST, north: NORTH },
    ['2023-05-01', '2023-06-01'], ['B04', 'B08']);
  b.reduce_dimension(b.ndvi(cube), function (data) { return this.max(data); }, 't');
  const service = await con.createService(b, type, 'NDVI from the web editor', 'made by services_check.js', true,
    { colormap: 'RdYlGn', value_range: [-1, 1] });
  out.created = { id: service.id, type: service.type, title: service.title, enabled: service.enabled,
    url: service.url, configuration: service.configuration, attributes: service.attributes };
  out.listed = (await con.listServices()).map(s => s.id).includes(service.id);

  const described = await con.getService(service.id);
  out.described = { title: described.title, description: described.description, type: described.type,
    has_process_graph: Boolean(described.process && described.process.process_graph) };
  if (type === 'WMTS') {
    // the editor asks for the capabilities with KVP parameters added to the service's URL
    out.capabilities = await answer(`${service.url}?service=wmts&request=GetCapabilities`);
  }
  const tile = await tileUrl(service);
  out.tile = await answer(tile);

  await service.updateService({ title: 'NDVI, renamed', enabled: false });
  out.updated = { title: service.title, enabled: service.enabled };
  out.tile_while_disabled = await answer(tile);
  await service.updateService({ enabled: true });
  out.tile_enabled_again = await answer(tile);

  const logs = await service.debugService().nextLogs();
  out.logs = { is_array: Array.isArray(logs), count: logs.length };

  await service.deleteService();
  out.listed_after_delete = (await con.listServices()).map(s => s.id).includes(service.id);
  out.tile_after_delete = await answer(tile);
  try {
    await con.getService(service.id);
    out.get_after_delete = 'found';
  } catch (e) {
    out.get_after_delete = e.code;
  }
  for (const key of ['tile', 'tile_while_disabled', 'tile_enabled_again', 'tile_after_delete']) {
    delete out[key].text;
  }
  if (out.capabilities) {
    out.capabilities.names_layer = out.capabilities.text.includes(`<ows:Identifier>${service.id}</ows:Identifier>`);
    delete out.capabilities.text;
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.log(JSON.stringify({ error: `${e.code || ''} ${e.message}` })); process.exit(1); });
