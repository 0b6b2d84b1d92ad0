"""A UDF worker: ``python -I -B -m udf.worker SOCKET_FD CONFIG_JSON``, started by :mod:`udf.pool`.

It confines itself (:mod:`udf.confine`) after importing the scientific stack, says ``ready``, then
serves requests from the server one at a time over the socket it inherited:

- ``load``: run the UDF's module code (once; a worker only ever runs one UDF of one user);
- ``metadata``: the band labels ``apply_metadata`` declares;
- ``run``: a block (memfd) with its dimensions, labels and the context → the UDF's result block
  (sealed memfd) with its dimensions.

Answers are JSON (see :mod:`udf.protocol` on why). The worker ends when the server closes the socket.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import socket
import sys
import traceback
from typing import Any

MAX_REQUEST_BYTES = 64 << 20
MAX_OUTPUT_CHARS = 20_000


class _BoundedText(io.StringIO):
    def write(self, text: str) -> int:
        if self.tell() < MAX_OUTPUT_CHARS:
            super().write(text[: MAX_OUTPUT_CHARS - self.tell()])
        return len(text)


def _read_paths() -> list[str]:
    import importlib.util

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    spec = importlib.util.find_spec("udf")
    if spec is not None and spec.submodule_search_locations:
        paths.update(spec.submodule_search_locations)
    from udf.confine import READ_ONLY_SYSTEM_PATHS

    paths.update(READ_ONLY_SYSTEM_PATHS)
    return sorted({os.path.realpath(p) for p in paths} | paths)


def _prepare(config: dict[str, Any]) -> dict[str, Any]:
    from udf import confine

    confine.set_resource_limits(config["memory_bytes"], config["cpu_budget_seconds"], config["max_file_bytes"])
    import numpy  # noqa: F401  (the stack is imported before the file system closes)
    import openeo.metadata  # noqa: F401
    import openeo.udf  # noqa: F401
    import pandas  # noqa: F401
    import xarray  # noqa: F401

    import udf.entrypoints  # noqa: F401
    import udf.protocol  # noqa: F401

    abi = confine.apply_landlock(_read_paths(), [os.getcwd()]) if config.get("landlock", True) else 0
    confine.no_new_privileges()
    if os.geteuid() == 0:
        confine.drop_capabilities()
    return {"landlock_abi": abi, "pid": os.getpid()}


def _answer(sock: socket.socket, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
    from udf.protocol import send_message

    send_message(sock, json.dumps(message).encode(), fds)


def _run(namespace: dict[str, Any], request: dict[str, Any], fds: list[int], config: dict[str, Any]):
    import numpy
    import xarray

    from udf import confine
    from udf.entrypoints import UdfUserError, apply_udf
    from udf.protocol import array_from_memfd, array_to_memfd

    dtype = numpy.dtype(request["dtype"])
    data = array_from_memfd(fds[0] if fds else None, tuple(request["shape"]), dtype, require_seals=False)
    cube = xarray.DataArray(data, dims=request["dims"], coords=request["coords"], name=request.get("name"))
    confine.limit_cpu_for_next_call(config["cpu_seconds"])
    output = _BoundedText()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        result = apply_udf(namespace, cube, request.get("context"))
    values = numpy.asarray(result.values)
    if values.dtype.kind not in "biuf":
        raise UdfUserError(
            f"The UDF returned values of type {values.dtype}; a data cube holds numbers (or booleans)."
        )
    fd = array_to_memfd(numpy.ascontiguousarray(values), "udf-result", seal=True)
    labels = {}
    for dim in result.dims:
        if dim in result.coords and result[dim].ndim == 1 and result[dim].dtype.kind in "OUSiuf":
            labels[str(dim)] = [str(v) for v in result[dim].values.tolist()][:100_000]
    message = {
        "ok": True, "dims": [str(d) for d in result.dims], "shape": list(values.shape), "dtype": values.dtype.str,
        "labels": labels, "output": output.getvalue(),
        "retire": confine.cpu_budget_left() < config["cpu_seconds"],
    }
    return message, [fd] if fd is not None else []


def serve(sock: socket.socket, config: dict[str, Any]) -> None:
    from udf.entrypoints import UdfMemoryError, UdfUserError, band_labels_from_metadata, load_code
    from udf.protocol import ProtocolError, close_fds, recv_message

    namespace: dict[str, Any] | None = None
    while True:
        try:
            payload, fds = recv_message(sock, MAX_REQUEST_BYTES)
        except (ProtocolError, OSError):
            return
        try:
            request = pickle.loads(payload)
            op = request["op"]
            if op == "load":
                namespace = load_code(request["code"])
                _answer(sock, {"ok": True})
            elif namespace is None:
                _answer(sock, {"ok": False, "kind": "internal", "message": "no UDF loaded"})
            elif op == "metadata":
                labels = band_labels_from_metadata(namespace, request["dims"], request.get("context"))
                _answer(sock, {"ok": True, "band_labels": labels})
            elif op == "run":
                message, out_fds = _run(namespace, request, fds, config)
                try:
                    _answer(sock, message, out_fds)
                finally:
                    close_fds(out_fds)
            else:
                _answer(sock, {"ok": False, "kind": "internal", "message": f"unknown request {op!r}"})
        except UdfMemoryError as exc:
            _answer(sock, {"ok": False, "kind": "memory", "message": str(exc)})
        except UdfUserError as exc:
            _answer(sock, {"ok": False, "kind": "user", "message": str(exc)})
        except MemoryError:
            _answer(sock, {"ok": False, "kind": "memory", "message": "The UDF runtime ran out of memory."})
        except Exception as exc:  # noqa: BLE001 - the runtime itself failed: report it, keep serving
            _answer(sock, {"ok": False, "kind": "internal",
                           "message": "".join(traceback.format_exception_only(type(exc), exc)).strip()})
        finally:
            close_fds(fds)


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    config = json.loads(argv[2])
    try:
        info = _prepare(config)
    except BaseException as exc:  # noqa: BLE001 - tell the server why the worker cannot start
        _answer(sock, {"ok": False, "kind": "internal", "message": traceback.format_exc(limit=5) or str(exc)})
        return 1
    _answer(sock, {"ok": True, **info})
    serve(sock, config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
