"""The UDF runtime: user Python code on cube blocks, in confined worker processes (``openeo.udf`` API).

Public surface (nothing here knows about openEO processes or HTTP):

- :class:`udf.pool.WorkerPool` / :func:`udf.pool.default_pool`: run a UDF on one numpy block with
  its dimension names and labels, in a worker bound to (user, code) — :mod:`udf.pool`;
- :class:`udf.pool.UdfError` (``kind`` says why) and :class:`udf.pool.UdfLimits`;
- :func:`udf.code.check_code` (compile without running), :func:`udf.code.fetch_code`,
  :func:`udf.code.check_runtime`, :func:`udf.code.runtimes_document` (``GET /udf_runtimes``).

Inside the worker: :mod:`udf.worker` (the request loop), :mod:`udf.entrypoints` (the ``openeo.udf``
contract), :mod:`udf.confine` (limits, Landlock, capabilities); :mod:`udf.protocol` is the wire.
Imports nothing of ``processes`` or ``backend`` (the import contracts in pyproject.toml check it).
"""
