"""Data access: STAC sources, COG readers, ``load_collection``/``load_stac`` and vector file loading.
May import ``processes.core`` and ``processes.model``."""
