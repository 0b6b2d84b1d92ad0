"""openEO processes over xarray/Dask: the evaluator, the process library, data loading, output formats.
May import ``udf``; never Flask or ``backend``. Rooms: core → model → data, zonal, formats → library → process_table."""
