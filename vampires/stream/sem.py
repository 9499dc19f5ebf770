"""Unnamed process-shared POSIX semaphores living inside a mapped stream file.

The C library keeps its ``sem_t`` in the stream file and calls ``sem_init``
(``pshared = 1``), ``sem_post``, ``sem_trywait``, ``sem_timedwait`` and
``sem_getvalue`` on those addresses. We call the same glibc functions through
:mod:`ctypes` (no extra package: the five calls are tiny and ``ctypes.CDLL``
releases the GIL during each call, so a blocked wait never stalls other
threads). A C reader blocked in ``sem_wait`` wakes when we post, and the other
way round, because glibc keys shared futexes by file and offset.

A :class:`Semaphore` is only an address: the caller owns the mapping and must
keep it mapped while the semaphore is used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import math
import os
import time

from vampires.errors import StreamError, StreamTimeout

__all__ = ["Semaphore"]


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    vp, cint = ctypes.c_void_p, ctypes.c_int
    libc.sem_init.argtypes = (vp, cint, ctypes.c_uint)
    libc.sem_post.argtypes = (vp,)
    libc.sem_trywait.argtypes = (vp,)
    libc.sem_timedwait.argtypes = (vp, ctypes.POINTER(_Timespec))
    libc.sem_getvalue.argtypes = (vp, ctypes.POINTER(cint))
    for fn in ("sem_init", "sem_post", "sem_trywait", "sem_timedwait", "sem_getvalue"):
        getattr(libc, fn).restype = cint
    if hasattr(libc, "sem_clockwait"):  # glibc >= 2.30: immune to wall-clock jumps
        libc.sem_clockwait.argtypes = (vp, cint, ctypes.POINTER(_Timespec))
        libc.sem_clockwait.restype = cint
    return libc


def _error(where: str, call: str) -> StreamError:
    err = ctypes.get_errno()
    msg = f"{call} failed on {where}: [errno {err}] {os.strerror(err)}"
    return StreamError(msg)


class Semaphore:
    """One ``sem_t`` at a fixed address inside a shared mapping.

    Parameters
    ----------
    address
        Address of the ``sem_t`` (32 bytes, 8-aligned) in a live mapping.
    where
        Human description for error messages (stream and index).
    """

    __slots__ = ("_addr", "_libc", "_value", "where")

    def __init__(self, address: int, where: str = "semaphore") -> None:
        self._addr = ctypes.c_void_p(address)
        self._libc = _libc()
        self._value = ctypes.c_int(0)
        self.where = where

    def init(self, value: int = 0) -> None:
        """Initialise as a process-shared semaphore (``sem_init(s, 1, value)``).

        Parameters
        ----------
        value
            Initial count.

        Raises
        ------
        StreamError
            ``sem_init`` failed.
        """
        if self._libc.sem_init(self._addr, 1, value) != 0:
            raise _error(self.where, "sem_init")

    def post(self) -> None:
        """Increment the semaphore, waking one waiter (``sem_post``).

        Raises
        ------
        StreamError
            ``sem_post`` failed (e.g. the value would overflow).
        """
        if self._libc.sem_post(self._addr) != 0:
            raise _error(self.where, "sem_post")

    def value(self) -> int:
        """Return the current count (``sem_getvalue``).

        Returns
        -------
        int

        Raises
        ------
        StreamError
            ``sem_getvalue`` failed.
        """
        if self._libc.sem_getvalue(self._addr, ctypes.byref(self._value)) != 0:
            raise _error(self.where, "sem_getvalue")
        return self._value.value

    def trywait(self) -> bool:
        """Decrement if positive, never block (``sem_trywait``).

        Returns
        -------
        bool
            True if decremented, False if the count was 0.

        Raises
        ------
        StreamError
            Any error other than EAGAIN / EINTR.
        """
        while True:
            if self._libc.sem_trywait(self._addr) == 0:
                return True
            err = ctypes.get_errno()
            if err == errno.EAGAIN:
                return False
            if err != errno.EINTR:
                raise _error(self.where, "sem_trywait")

    def flush(self) -> int:
        """Decrement to zero (``ImageStreamIO_semflush``).

        Returns
        -------
        int
            How many posts were discarded.
        """
        n = 0
        while self.trywait():
            n += 1
        return n

    def wait(self, timeout: float) -> bool:
        """Wait until the count is positive, then decrement it.

        Parameters
        ----------
        timeout
            Seconds (>= 0; ``math.inf`` waits forever). The GIL is released
            while waiting; interrupted waits resume with the remaining time.

        Returns
        -------
        bool
            True if decremented, False on timeout.

        Raises
        ------
        StreamError
            A negative or NaN timeout, or ``sem_timedwait`` failed.
        """
        if not timeout >= 0:
            msg = f"wait on {self.where}: timeout must be >= 0 s (got {timeout!r})"
            raise StreamError(msg)
        if timeout == 0:
            return self.trywait()
        use_clockwait = hasattr(self._libc, "sem_clockwait")
        clock = time.CLOCK_MONOTONIC if use_clockwait else time.CLOCK_REALTIME
        finite = math.isfinite(timeout)
        deadline = time.clock_gettime_ns(clock) + (int(timeout * 1e9) if finite else 0)
        if not finite:
            deadline = time.clock_gettime_ns(clock) + 10**9 * 86400 * 365 * 100
        ts = _Timespec(*divmod(deadline, 1_000_000_000))
        while True:
            if use_clockwait:
                rc = self._libc.sem_clockwait(self._addr, clock, ctypes.byref(ts))
            else:
                rc = self._libc.sem_timedwait(self._addr, ctypes.byref(ts))
            if rc == 0:
                return True
            err = ctypes.get_errno()
            if err == errno.ETIMEDOUT:
                return False
            if err != errno.EINTR:
                raise _error(self.where, "sem_timedwait")

    def wait_or_raise(self, timeout: float, what: str) -> None:
        """Like :meth:`wait` but raise :class:`StreamTimeout` on timeout.

        Parameters
        ----------
        timeout
            Seconds.
        what
            Subject of the timeout message.

        Raises
        ------
        StreamTimeout
            Nothing posted within ``timeout``.
        """
        if not self.wait(timeout):
            msg = f"{what}: no new frame within {timeout:g} s"
            raise StreamTimeout(msg)
