// The openEO JavaScript client (used by the openEO web editor) against a live server.
// Usage: node client_check.js URL USER PASSWORD  — prints one JSON line with what it saw.
const { OpenEO } = require('@openeo/js-client');

(async () => {
  const [url, user, password] = process.argv.slice(2);
  const con = await OpenEO.connect(url);
  const caps = con.capabilities();
  const out = { api: caps.apiVersion(), features: {} };
  for (const f of ['computeResult', 'createJob', 'listProcesses', 'listCollections', 'validateProcess']) {
    out.features[f] = caps.hasFeature(f);
  }
  out.collections = (await con.listCollections()).collections.map(c => c.id);
  out.processes = (await con.listProcesses()).processes.length;
  out.processing_parameters = caps.hasConformance(
    'https://api.openeo.org/extensions/processing-parameters/0.1.*') && caps.hasFeature('listProcessingParameters')
    ? (await con.listProcessingParameters()).create_job_parameters.map(p => p.name) : null;
  await con.authenticateBasic(user, password);
  out.user = (await con.describeAccount()).user_id;
  const b = await con.buildProcess();
  const cube = b.load_collection('DEMO_SENTINEL2_L2A',
    { west: 601000, south: 5036000, east: 602000, north: 5037000, crs: 32632 },
    ['2023-05-01', '2023-06-01'], ['B04', 'B08']);
  const composite = b.reduce_dimension(b.ndvi(cube), function (data) { return this.max(data); }, 't');
  b.save_result(composite, 'GTiff');
  const result = await con.computeResult(b);
  let bytes = 0;
  for await (const chunk of result.data) bytes += chunk.length;
  out.result = { type: result.type, bytes };
  out.validation_errors = (await con.validateProcess(b)).length;
  const job = await con.createJob(b, 'from the JS client');
  out.job_status = (await job.describeJob()).status;
  await job.deleteJob();
  console.log(JSON.stringify(out));
})().catch(e => { console.log(JSON.stringify({ error: `${e.code || ''} ${e.message}` })); process.exit(1); });
