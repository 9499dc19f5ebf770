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
import platform
import sys
import time
from collections.abc import Callable

from vampires.errors import StreamError, StreamTimeout

__all__ = ["FLUSH_LIMIT", "Semaphore"]

#: Most decrements :meth:`Semaphore.flush` makes (writers keep counts <= 10).
FLUSH_LIMIT = 4096


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


#: ``SYS_futex`` per machine (Linux); elsewhere guarded waits use glibc's.
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
_FUTEX_WAIT_BITSET = 9
_FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF


def _guarded_futex() -> bool:
    """Whether :meth:`Semaphore.wait` can wait without glibc touching the semaphore after."""
    return sys.platform == "linux" and sys.byteorder == "little" and _SYS_FUTEX is not None


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

    __slots__ = ("_addr", "_libc", "_value", "guard", "where")

    def __init__(self, address: int, where: str = "semaphore") -> None:
        self._addr = ctypes.c_void_p(address)
        self._libc = _libc()
        self._value = ctypes.c_int(0)
        self.where = where
        #: Called before every touch of the semaphore by :meth:`wait`; raises when
        #: the mapping is no longer safe (the stream file shrank). See :meth:`wait`.
        self.guard: Callable[[], None] | None = None

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
        """Decrement to zero (``ImageStreamIO_semflush``), at most :data:`FLUSH_LIMIT` times.

        Writers post only below ``SEMAPHORE_MAXVAL`` (10), so a live count is
        small; a huge one means the semaphore holds garbage (a damaged or
        hostile file), and decrementing it one by one would take hours.

        Returns
        -------
        int
            How many posts were discarded.

        Raises
        ------
        StreamError
            Still positive after :data:`FLUSH_LIMIT` decrements: not a real count.
        """
        for n in range(FLUSH_LIMIT):
            if not self.trywait():
                return n
        msg = (
            f"{self.where} still counts after {FLUSH_LIMIT} decrements (value "
            f"{self._safe_value()}): the stream file is damaged; re-create the stream"
        )
        raise StreamError(msg)

    def _safe_value(self) -> str:
        try:
            return str(self.value())
        except StreamError as exc:
            return f"unreadable: {exc}"

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
        if self.guard is not None and _guarded_futex():
            return self._guarded_wait(timeout, self.guard)
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

    def _guarded_wait(self, timeout: float, guard: Callable[[], None]) -> bool:
        """:meth:`wait` that never touches the semaphore without ``guard()`` first.

        glibc's ``sem_timedwait`` writes the semaphore when its futex wait
        ends; if the file was truncated meanwhile that write is a SIGBUS, which
        kills a Python process. Here the sleep is the bare ``futex`` system
        call (a vanished page is ``EFAULT`` there, not a signal) and every
        access of the ``sem_t`` comes right after ``guard()``, which raises once
        the file is shorter than the mapping. Same protocol as glibc's 64-bit
        semaphores (value in the low 32 bits, waiter count in the high 32 bits,
        shared futex on the value word), so glibc's and the C library's
        ``sem_post`` wake it. The waiter count is updated with a plain 32-bit
        store, which is safe because one reader holds a semaphore index (a
        poster's compare-and-swap on the 64-bit word retries if it changes).
        """
        if _SYS_FUTEX is None:
            msg = "futex wait without the futex system call (checked by _guarded_futex)"
            raise StreamError(msg)
        addr = self._addr.value or 0
        value = ctypes.c_uint32.from_address(addr)
        waiters = ctypes.c_uint32.from_address(addr + 4)
        finite = math.isfinite(timeout)
        span = int(timeout * 1e9) if finite else 10**9 * 86400 * 365 * 100
        deadline = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + span
        ts = _Timespec(*divmod(deadline, 1_000_000_000))
        syscall = self._libc.syscall
        guard()  # then again after every sleep: the only long gaps
        while True:
            if self.trywait():
                return True
            if time.clock_gettime_ns(time.CLOCK_MONOTONIC) >= deadline:
                return False
            waiters.value += 1
            try:
                err = errno.EAGAIN
                if value.value == 0:
                    rc = syscall(  # variadic: every argument a full register
                        ctypes.c_long(_SYS_FUTEX),
                        ctypes.c_void_p(addr),
                        ctypes.c_long(_FUTEX_WAIT_BITSET),  # absolute CLOCK_MONOTONIC
                        ctypes.c_long(0),
                        ctypes.byref(ts),
                        ctypes.c_void_p(None),
                        ctypes.c_long(_FUTEX_BITSET_MATCH_ANY),
                    )
                    err = ctypes.get_errno() if rc != 0 else 0
            finally:
                guard()  # the file shrank while we slept: leave the semaphore alone
                waiters.value -= 1
            if err == errno.ETIMEDOUT:
                return self.trywait()  # a post at the very end still counts
            if err not in (0, errno.EAGAIN, errno.EINTR):
                raise _error(self.where, "futex wait")

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
