"""The process families, one module each (math, logic, arrays, dimensions, masking, vector, ``run_udf`` …).
May import ``processes.core``, ``model``, ``data``, ``zonal``, ``formats`` and ``udf``; each module lists its ``PROCESSES``."""
