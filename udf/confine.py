"""Confinement of a UDF worker process, applied by the worker to itself before it runs user code.

What is done, all without root-only tools:

- **Resource limits** (``setrlimit``): address space (memory), CPU seconds (a lifetime budget as the
  hard limit; the soft limit is moved per call), no core files, bounded file sizes and open files.
- **Landlock** (Linux ≥ 5.13, via ``ctypes``; unprivileged): the file system is read-only and
  limited to the Python installation (interpreter, standard library, site-packages), system
  libraries and ``/dev/null``-like devices; the worker's own temporary folder is the only writable
  place. The server's data folder, ``/etc``, ``/proc`` (other processes' environments) and home
  folders are not readable. Where the kernel supports it (ABI 4/6), outgoing and incoming TCP is
  denied, and signals to processes outside the sandbox (the server) are blocked.
- **No new privileges**, and when the server runs as root, every capability is dropped, so the
  worker can neither raise its limits nor bypass file permissions.

Landlock may be unavailable (old kernel, disabled LSM, seccomp in a container): the worker then
runs with limits, clean environment and private cwd only; :func:`landlock_abi` tells which case
applies, and the server logs it.
"""

from __future__ import annotations

import ctypes
import os
import resource
import struct

_libc = ctypes.CDLL(None, use_errno=True)

# Syscall numbers are the same on x86_64 and aarch64 (asm-generic table).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_ABI1_ALL = (1 << 13) - 1  # execute … make_sym
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1

_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

READ_ONLY_SYSTEM_PATHS = (
    "/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64", "/usr/share/zoneinfo",
    "/etc/ld.so.cache", "/etc/localtime", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random",
)


def set_resource_limits(memory_bytes: int, cpu_budget_seconds: int, max_file_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_budget_seconds, cpu_budget_seconds))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), min(256, hard)))


def cpu_seconds_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def limit_cpu_for_next_call(seconds: int) -> None:
    """Move the soft CPU limit to ``seconds`` from now (SIGXCPU ends the worker when reached)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(cpu_seconds_used()) + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def cpu_budget_left() -> float:
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    return float("inf") if hard == resource.RLIM_INFINITY else hard - cpu_seconds_used()


def _syscall(number: int, *args) -> int:
    result = _libc.syscall(number, *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    try:
        return _syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    except OSError:
        return 0


def no_new_privileges() -> None:
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def drop_capabilities() -> None:
    """Drop all capabilities (bounding, ambient, effective, permitted, inheritable)."""
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL past the last capability; EPERM without CAP_SETPCAP (nothing to drop)
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = bytes(24)  # two {effective, permitted, inheritable} u32 triples, all zero
    if _libc.capset(ctypes.c_char_p(header), ctypes.c_char_p(data)) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def apply_landlock(read_paths: list[str], write_paths: list[str]) -> int:
    """Restrict the file system (and TCP, signals where supported); returns the ABI used (0: none)."""
    abi = landlock_abi()
    if abi < 1:
        return 0
    handled_fs = _FS_ABI1_ALL
    if abi >= 2:
        handled_fs |= _FS_REFER
    if abi >= 3:
        handled_fs |= _FS_TRUNCATE
    if abi >= 5:
        handled_fs |= _FS_IOCTL_DEV
    handled_net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled_fs, handled_net)
    else:
        attr = struct.pack("=Q", handled_fs)
    ruleset = _syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.c_char_p(attr), ctypes.c_size_t(len(attr)),
                       ctypes.c_uint32(0))
    try:
        read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
        for path, access in [*((p, read) for p in read_paths), *((p, handled_fs) for p in write_paths)]:
            _allow(ruleset, path, access, handled_fs)
        no_new_privileges()
        _syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return abi


def _allow(ruleset: int, path: str, access: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # absent on this system: nothing to allow
    try:
        if not os.path.isdir(path):
            access &= _FILE_RIGHTS
            if path.startswith("/dev/"):
                access |= _FS_WRITE_FILE  # writing to /dev/null is harmless
        rule = struct.pack("=Qi", access & handled, fd)
        _syscall(_SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
                 ctypes.c_char_p(rule), ctypes.c_uint32(0))
    finally:
        os.close(fd)
