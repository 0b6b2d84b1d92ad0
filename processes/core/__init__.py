"""The machinery of evaluation: graph parsing and evaluation, the registry types, specs, errors, the environment.
Imports nothing else of ``processes`` (the other rooms build on it)."""
