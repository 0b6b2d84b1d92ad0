"""The wire between the server and a UDF worker: framed messages over a Unix socket, arrays in memfds.

Every message is a 4-byte length, the payload, and up to two file descriptors passed alongside
(``SCM_RIGHTS``). Arrays never travel through the socket: the sender copies the block once into an
anonymous ``memfd`` and passes the descriptor; the receiver maps it. The worker maps the server's
block copy-on-write (a UDF may modify its input in place without touching the server's copy); the
server maps the worker's result after checking that the memfd is sealed against shrinking and
writing, so a UDF can neither change a result after handing it over nor truncate it under the
server's mapping (which would be a SIGBUS in the server).

Direction matters for trust: the server sends pickles (it trusts itself), the worker answers in
JSON only, with sizes and types checked, because unpickling a worker's answer would let user code
run in the server.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import socket
import struct

import numpy as np

HEADER = struct.Struct("!I")
MAX_FDS = 2

_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
_ALLOWED_KINDS = "biuf"  # bool, signed, unsigned, float: what a raster cube block may hold


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed message (or closed the connection)."""


def send_message(sock: socket.socket, payload: bytes, fds: list[int] | tuple[int, ...] = ()) -> None:
    header = HEADER.pack(len(payload))
    if fds:
        socket.send_fds(sock, [header], list(fds))
    else:
        sock.sendall(header)
    sock.sendall(payload)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ProtocolError("the connection closed in the middle of a message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_message(sock: socket.socket, max_bytes: int) -> tuple[bytes, list[int]]:
    """One message and the descriptors that came with it; EOF raises :class:`ProtocolError`."""
    data, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, MAX_FDS)
    try:
        if not data:
            raise ProtocolError("the connection closed")
        if len(data) < HEADER.size:
            data += _recv_exactly(sock, HEADER.size - len(data))
        (size,) = HEADER.unpack(data)
        if size > max_bytes:
            raise ProtocolError(f"a message of {size} bytes is larger than the {max_bytes} allowed")
        return _recv_exactly(sock, size), fds
    except BaseException:
        close_fds(fds)
        raise


def close_fds(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def array_to_memfd(array: np.ndarray, name: str, *, seal: bool) -> int | None:
    """A memfd holding ``array``'s bytes (C order); None for an empty array. One copy."""
    nbytes = array.nbytes
    if nbytes == 0:
        return None
    flags = os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if seal else 0)
    fd = os.memfd_create(name, flags)
    try:
        os.ftruncate(fd, nbytes)
        with mmap.mmap(fd, nbytes, access=mmap.ACCESS_WRITE) as mapped:
            target = np.frombuffer(mapped, dtype=array.dtype, count=array.size).reshape(array.shape)
            np.copyto(target, array, casting="no")
            del target
        if seal:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS | fcntl.F_SEAL_SEAL)
        return fd
    except BaseException:
        os.close(fd)
        raise


def checked_dtype(name: object) -> np.dtype:
    """A dtype named by the peer, limited to the numeric kinds a raster block may hold."""
    try:
        dtype = np.dtype(str(name))
    except TypeError:
        raise ProtocolError(f"unknown dtype {name!r}") from None
    if dtype.kind not in _ALLOWED_KINDS or dtype.hasobject:
        raise ProtocolError(f"dtype {dtype} is not a numeric type")
    return dtype


def checked_shape(shape: object) -> tuple[int, ...]:
    if not isinstance(shape, list) or len(shape) > 32 or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ProtocolError(f"invalid shape {shape!r}")
    return tuple(shape)


def array_from_memfd(fd: int | None, shape: tuple[int, ...], dtype: np.dtype, *, require_seals: bool) -> np.ndarray:
    """Map ``fd`` copy-on-write as an array; the mapping lives as long as the array."""
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * dtype.itemsize
    if nbytes == 0:
        if fd is not None:
            os.close(fd)
        return np.empty(shape, dtype=dtype)
    if fd is None:
        raise ProtocolError(f"an array of {nbytes} bytes came without its memory")
    try:
        if require_seals:
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            if seals & _SEALS != _SEALS:
                raise ProtocolError("the result memory is not sealed against changes")
        if os.fstat(fd).st_size < nbytes:
            raise ProtocolError(f"the array memory holds fewer than the {nbytes} bytes announced")
        mapped = mmap.mmap(fd, nbytes, access=mmap.ACCESS_COPY)
    finally:
        os.close(fd)
    return np.frombuffer(mapped, dtype=dtype, count=count).reshape(shape)
