"""Consumers of a stream: :class:`StreamReader` and the frames it returns.

The reader protocol (the C library's; the writer's is in :mod:`vampires.stream.stream`): a
reader claims a semaphore index in ``semReadPID`` as
``ImageStreamIO_getsemwaitindex`` does (a free slot is 0, -1 or the PID of
a dead process) but never an index already holding our own PID, so two
readers in one process each get their own index and never steal each
other's wake-ups; flushes it; releases it (writes 0) on close. A frame is
copied, then checked: if the write flag was set or ``cnt0`` changed during
the copy the copy is torn, counted, logged and retried; a torn frame is
never returned. With a fast circular buffer (``circular_buffer > 0``)
filled by our writer, the frame is copied from its slot instead, which
the writer rewrites only ``CBsize`` frames later. ``Frame.missed`` counts
frames published but skipped since the previous frame this reader returned.
Writers that post the semaphores *before* they increment ``cnt0`` (pyMilk's
``set_data``) are handled: a wake that finds ``cnt0`` unchanged is followed
by a short bounded poll for the count, the reader keeps a balance of posts
against counts (a post whose count has not come yet means the pixels already
hold the next frame: it waits for the count), and a frame taken from the
pixel array of such a writer is looked at once more a moment later. (This
order leaves a writer preempted between its pixels and its post invisible
for as long as it is preempted: the second look bounds that window, it
cannot close it; ImageStreamIO's order has no such window.)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import attrs
import numpy as np

from vampires._checks import check_int
from vampires.errors import (
    StreamClosedError,
    StreamError,
    StreamTimeout,
    TornFrameError,
)
from vampires.stream import clock
from vampires.stream._views import (
    MAX_TORN,
    STUCK_WRITE_S,
    Views,
    slot_holding,
    slot_times,
)
from vampires.stream.layout import (
    SEMAPHORE_MAXVAL,
)
from vampires.stream.sem import Semaphore

if TYPE_CHECKING:
    from numpy.typing import NDArray

if TYPE_CHECKING:
    from vampires.stream.stream import Stream

logger = logging.getLogger(__name__)


#: After a wake that finds ``cnt0`` unchanged, how long a reader polls for it to move
#: (writers that post before counting, as pyMilk's ``set_data``), and its poll steps.
_POST_BEFORE_COUNT_S = 0.25
_POLL_FIRST_S = 20e-6
_POLL_MAX_S = 5e-3
#: A writer seen counting at most this long after its post is taken to post before counting.
_POST_FIRST_MAX_S = 1e-3
#: Longest second look at a frame taken from such a writer (see StreamReader._take).
_POST_FIRST_GRACE_S = 200e-6


# --------------------------------------------------------------------------- values


@attrs.frozen(kw_only=True)
class FrameInfo:
    """Counters and times of one frame (what :class:`Frame` has, without pixels).

    Attributes
    ----------
    cnt0
        Frame counter after this frame was written.
    cnt1
        Slice last written (3-D rolling buffers), else as the writer left it.
    acquisition_time
        Unix seconds UTC of acquisition (``atime``).
    write_time
        Unix seconds UTC the frame was published (``writetime``).
    missed
        Frames published but skipped since the previous one this reader returned.
    slot
        The circular-buffer slot the frame was taken from (its pixels stay
        there until the writer reuses the slot, see :meth:`Stream.slot_holds`),
        or None when it was taken from the main pixel array.
    """

    cnt0: int
    cnt1: int
    acquisition_time: float
    write_time: float
    missed: int = 0
    slot: int | None = None


@attrs.frozen(kw_only=True)
class Frame:
    """One consistent (never torn) frame and its counters.

    Attributes
    ----------
    data
        Pixels, numpy order (``(height, width)`` or ``(depth, height, width)``).
    cnt0, cnt1, acquisition_time, write_time, missed, slot
        As in :class:`FrameInfo`.
    """

    data: NDArray[Any] = attrs.field(eq=False, repr=lambda a: f"<{a.dtype} {a.shape}>")
    cnt0: int
    cnt1: int
    acquisition_time: float
    write_time: float
    missed: int = 0
    slot: int | None = None

    @property
    def info(self) -> FrameInfo:
        """The same frame without pixels."""
        return FrameInfo(
            cnt0=self.cnt0,
            cnt1=self.cnt1,
            acquisition_time=self.acquisition_time,
            write_time=self.write_time,
            missed=self.missed,
            slot=self.slot,
        )


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.getpgid(pid)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class StreamReader:
    """A consumer of a stream holding its own semaphore index.

    Create with :meth:`Stream.reader`; close (or use ``with``) to release the
    index. One reader per consuming thread; :meth:`close` may come from any
    thread and wakes the consumer.

    Attributes
    ----------
    torn
        Torn copies detected (and retried, or raised by :meth:`next_into`).
    missed
        Frames skipped in total (sum of ``Frame.missed``).
    caught_up
        Frames returned from the circular buffer after the reader fell behind
        (``catch_up=True``): late, but not lost.

    With ``catch_up=True`` a reader that fell behind returns the frame right
    after the last one it returned, taken from its circular-buffer slot, as
    long as our writer filled that slot and has not reused it (it zeroes a
    slot's ``cnt0`` before rewriting it, so the check after the copy is
    exact). Streams written by the C library leave ``CBFRAMEMD`` empty: the
    reader then jumps to the newest frame and counts the gap as missed.
    """

    def __init__(
        self,
        stream: Stream,
        *,
        index: int | None = None,
        catch_up: bool = False,
        max_lag: int | None = None,
    ) -> None:
        self._stream = stream
        self._catch_up = bool(catch_up) and stream._layout.cbsize > 0
        cbsize = stream._layout.cbsize
        self._max_lag = (
            cbsize - 1
            if max_lag is None
            else check_int(max_lag, "max_lag", 0, max(cbsize - 1, 0), error=StreamError)
        )
        self.caught_up = 0
        v = stream._views()
        self._index = self._claim(stream, v, index)
        self._sem: Semaphore | None = v.sems[self._index]
        try:
            self._sem.flush()  # bounded: a damaged semaphore raises
        except StreamError:
            if int(v.read_pid[self._index]) == os.getpid():
                v.read_pid[self._index] = 0
            raise
        self._last = int(v.cnt0[0])
        # posts consumed minus counts seen since then (see _ahead)
        self._posts = 0
        self._counted = self._last
        # how long after its post the writer counts, if it posts first (pyMilk), else 0
        self._post_first_s = 0.0
        self.torn = 0
        self.missed = 0

    @staticmethod
    def _claim(stream: Stream, v: Views, preferred: int | None) -> int:
        nsem = len(v.sems)
        if preferred is not None:
            check_int(preferred, "semaphore index", 0, nsem - 1, error=StreamError)
        pid = os.getpid()
        # flock on a private descriptor serialises claims between our readers
        # (threads and processes); C readers do not lock, as in the C library.
        fd = stream._lock_fd()
        try:
            if fd >= 0:
                fcntl.flock(fd, fcntl.LOCK_EX)
            pids = v.read_pid

            def free(i: int) -> bool:
                holder = int(pids[i])
                return holder != pid and (holder in (0, -1) or not _pid_alive(holder))

            order = ([preferred] if preferred is not None else []) + list(range(nsem))
            for i in order:
                if free(i):
                    pids[i] = pid
                    return i
        finally:
            if fd >= 0:
                os.close(fd)
        msg = (
            f"stream {stream.name!r}: all {nsem} semaphores are held by live readers "
            f"(semReadPID {[int(p) for p in v.read_pid]}); close a reader or re-create the "
            "stream with more nsemaphores"
        )
        raise StreamError(msg)

    @property
    def index(self) -> int:
        """The semaphore index this reader holds."""
        return self._index

    @property
    def last_cnt0(self) -> int:
        """``cnt0`` of the last frame returned (at creation: the stream's cnt0)."""
        return self._last

    def _live(self) -> Semaphore:
        if self._sem is None:
            msg = f"reader of stream {self._stream.name!r} is closed"
            raise StreamClosedError(msg)
        self._stream._views()
        return self._sem

    def close(self) -> None:
        """Release the semaphore index (idempotent).

        A thread blocked in :meth:`wait` or :meth:`next` on this reader wakes
        at once with :class:`~vampires.errors.StreamClosedError`.
        """
        sem, self._sem = self._sem, None
        if sem is None:
            return
        with contextlib.suppress(StreamError):  # closed, or the file shrank: leave it
            self._stream._views()
            sem.post()  # wake our own waiter, if any (the next claimer flushes)
            pids = self._stream._views().read_pid
            if int(pids[self._index]) == os.getpid():
                pids[self._index] = 0
        with contextlib.suppress(ValueError):
            self._stream._readers.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, timeout: float) -> int:
        """Block until the writer posts this reader's semaphore.

        Parameters
        ----------
        timeout
            Seconds.

        Returns
        -------
        int
            ``cnt0`` after the wake.

        Raises
        ------
        StreamTimeout
            Nothing posted within ``timeout``.
        """
        self._live().wait_or_raise(timeout, f"stream {self._stream.name!r}")
        self._live()  # closed while waiting
        self._posts += 1
        return self._stream.cnt0

    def _await_new(self, timeout: float) -> None:
        """Return once ``cnt0`` differs from the last frame returned.

        A wake that finds ``cnt0`` unchanged is either a post left over from a
        frame already read or a writer that posts its semaphores *before* it
        increments ``cnt0`` (pyMilk's ``set_data``). For the latter the count
        moves microseconds later and no other post will come until the next
        frame: so after such a wake the reader polls ``cnt0`` for a short,
        bounded time (:data:`_POST_BEFORE_COUNT_S`), sleeping on the
        semaphore between polls with growing steps (a new post ends the step
        at once), instead of sleeping until the next frame or its timeout.
        """
        sem = self._live()
        v = self._stream._views()
        if not timeout >= 0:
            msg = f"timeout must be >= 0 s (got {timeout!r})"
            raise StreamError(msg)
        cnt0 = v.cnt0
        last = self._last
        if int(cnt0[0]) != last:
            return
        deadline = time.monotonic() + timeout
        poll_until = -math.inf
        step = _POLL_FIRST_S
        while True:
            now = time.monotonic()
            remaining = deadline - now
            polling = now < poll_until
            if polling:
                slice_s = min(step, remaining, poll_until - now)
                step = min(step * 2, _POLL_MAX_S)
            else:
                slice_s = remaining
            woke = slice_s > 0 and sem.wait(slice_s)
            self._live()  # closed while waiting
            self._posts += woke
            if int(cnt0[0]) != last:
                if polling and not woke:  # counted after its post: a writer that posts first
                    self._learn_post_first(time.monotonic() + _POST_BEFORE_COUNT_S - poll_until)
                return
            if woke:  # posted before counted, or a post left over: poll a while
                poll_until = time.monotonic() + _POST_BEFORE_COUNT_S
                step = _POLL_FIRST_S
            elif time.monotonic() >= deadline:
                if not polling:
                    self._resync()  # quiet for the whole timeout: the stream is at rest
                msg = f"stream {self._stream.name!r}: no new frame within {timeout:g} s"
                raise StreamTimeout(msg)

    def _learn_post_first(self, delay: float) -> None:
        """Note how long after its post a writer counted (a writer that posts first)."""
        if delay < _POST_FIRST_MAX_S:
            delay = max(delay, _POLL_FIRST_S)
            known = self._post_first_s
            self._post_first_s = delay if not known else known + 0.1 * (delay - known)

    def _ahead(self, sem: Semaphore) -> int:
        """Consume the pending posts; return posts seen minus counts seen.

        A writer posts once per frame (while the semaphore is below
        ``SEMAPHORE_MAXVAL``). ImageStreamIO counts before it posts, so this
        is <= 0; a positive value is a post whose count has not come yet (a
        writer that posts before it counts, pyMilk's ``set_data``): the pixel
        array already holds a frame ``cnt0`` does not show. Posts the writer
        skipped while the semaphore was full would make the balance drift: it
        starts again from here after such a drain.
        """
        drained = sem.flush()
        cnt0 = int(self._stream._views().cnt0[0])
        self._posts += drained - (cnt0 - self._counted)
        self._counted = cnt0
        if drained >= SEMAPHORE_MAXVAL - 1:
            # the writer may have skipped posts (semaphore full): forget the counts they
            # would have matched. (A count whose post is still to come then shows as a
            # post ahead once: a short settle, resynchronised if no count follows.)
            self._posts = max(self._posts, 0)
        return self._posts

    def _resync(self) -> None:
        """Start the post balance again: the stream is at rest (or the balance proved wrong)."""
        if self._sem is not None:
            self._sem.flush()
        self._posts = 0
        self._counted = int(self._stream._views().cnt0[0])

    def _settle(self, cnt0: int) -> bool:
        """Wait (bounded, sleeping) until ``cnt0`` moves past a frame a writer is replacing.

        Returns whether it moved.
        """
        v = self._stream._views()
        end = time.monotonic() + _POST_BEFORE_COUNT_S
        step = _POLL_FIRST_S
        while int(v.cnt0[0]) == cnt0:
            if time.monotonic() >= end:
                return False
            time.sleep(step)
            step = min(step * 2, _POLL_MAX_S)
        return True

    def _info(
        self, cnt0: int, cnt1: int, times: tuple[int, int, int, int], slot: int | None = None
    ) -> FrameInfo:
        missed = max(0, cnt0 - self._last - 1)
        self.missed += missed
        self._last = cnt0
        off = clock.tai_offset_ns()
        return FrameInfo(
            cnt0=cnt0,
            cnt1=cnt1,
            acquisition_time=clock.to_unix(times[0], times[1], off),
            write_time=clock.to_unix(times[2], times[3], off),
            missed=missed,
            slot=slot,
        )

    def _behind_slot(self, v: Views) -> tuple[int, int] | None:
        """(slot, cnt0) of the frame after the last returned, if behind and still buffered."""
        if not self._catch_up:
            return None
        want = self._last + 1
        lag = int(v.cnt0[0]) - want
        if lag <= 0 or lag > self._max_lag:
            return None
        slot = slot_holding(v, self._stream._layout.cbsize, want)
        return None if slot is None else (slot, want)

    def _from_slot(
        self, v: Views, slot: int, want: int, func: Callable[[NDArray[Any]], object]
    ) -> FrameInfo | None:
        """Let ``func`` copy frame ``want`` from its slot; None if it was reused meanwhile."""
        md = v.cbmd[slot]
        view = v.cbdata[slot].view()
        view.flags.writeable = False
        func(view)
        cnt1 = int(md["cnt1"])
        times = slot_times(md)
        if int(md["cnt0"]) != want:
            return None
        if want != int(v.cnt0[0]):
            self.caught_up += 1
        return self._info(want, cnt1, times, slot)

    def _latest_slot(self, v: Views) -> tuple[int, int] | None:
        """(slot, cnt0) of the newest frame if our writer also put it in its slot."""
        c0 = int(v.cnt0[0])
        slot = slot_holding(v, self._stream._layout.cbsize, c0)
        return None if slot is None else (slot, c0)

    def next(self, timeout: float, *, out: NDArray[Any] | None = None) -> Frame:
        """Return the next frame newer than the last one returned.

        Returns at once if one was already published; torn copies are
        retried (counted in :attr:`torn`), never returned.

        Parameters
        ----------
        timeout
            Seconds to wait for a new frame.
        out
            Optional array (stream shape and dtype) to copy into; no allocation.

        Returns
        -------
        Frame
            ``missed`` = frames skipped since the previous one returned.

        Raises
        ------
        StreamTimeout
            No new frame within ``timeout``.
        TornFrameError
            The writer overwrote the frame during every copy attempt.
        """
        self._await_new(timeout)
        stream = self._stream
        data = stream._check_out(out) if out is not None else np.empty_like(stream._views().data)

        def copy(view: NDArray[Any]) -> None:
            np.copyto(data, view)

        for _ in range(MAX_TORN):
            info = self._take(copy)
            if info is not None:
                return Frame(
                    data=data,
                    cnt0=info.cnt0,
                    cnt1=info.cnt1,
                    acquisition_time=info.acquisition_time,
                    write_time=info.write_time,
                    missed=info.missed,
                    slot=info.slot,
                )
            logger.debug("stream %r: torn copy, retrying", stream.name)
        msg = (
            f"stream {stream.name!r}: {MAX_TORN} torn copies in a row (the writer "
            "overwrites frames faster than they can be copied)"
        )
        raise TornFrameError(msg)

    def next_into(self, func: Callable[[NDArray[Any]], object], timeout: float) -> FrameInfo:
        """Wait for a new frame and let ``func`` copy it from the zero-copy view.

        Parameters
        ----------
        func
            Called with a read-only view of the pixels; must copy what it needs.
        timeout
            Seconds to wait for a new frame.

        Returns
        -------
        FrameInfo

        Raises
        ------
        StreamTimeout
            No new frame within ``timeout``.
        TornFrameError
            The frame changed while ``func`` ran: what it copied is not one
            frame. The frame counts as missed at the next call.
        """
        self._await_new(timeout)
        info = self._take(func)
        if info is None:
            msg = (
                f"stream {self._stream.name!r}: frame {self._stream.cnt0} was overwritten while "
                "it was being copied (torn); skip it"
            )
            raise TornFrameError(msg)
        return info

    def _take(self, func: Callable[[NDArray[Any]], object]) -> FrameInfo | None:
        """Let ``func`` copy the next frame (from its slot if buffered); None if torn.

        Raises
        ------
        TornFrameError
            The write flag stayed up (writer died mid-frame).
        """
        v = self._stream._views()
        behind = self._behind_slot(v)
        if behind is not None:
            info = self._from_slot(v, *behind, func)
            if info is not None:
                return info
            # reused while func copied it: that frame is lost; go on with the newest
        latest = self._latest_slot(v)
        if latest is not None:
            # the slot is rewritten only CBsize frames later: a slow copy does not tear
            info = self._from_slot(v, *latest, func)
            if info is not None:
                return info
        sem = self._live()
        if self._ahead(sem) > 0:
            # a post whose count has not come yet: the writer posts before it counts
            # (pyMilk) and the pixels already hold the next frame: wait for its count
            if self._settle(int(v.cnt0[0])):
                if self._ahead(sem) > 0:
                    # still ahead once the count came: the balance was off by a post
                    # (a resync fell between a count and its post); without this the
                    # reader would wait one frame at every call and lose every other one
                    self._posts = 0
            else:
                self._resync()  # no count came: the balance was wrong
        start = time.monotonic()
        while v.write[0]:
            if time.monotonic() - start > STUCK_WRITE_S:
                msg = f"stream {self._stream.name!r}: write flag stuck (writer died mid-frame?)"
                raise TornFrameError(msg)
            time.sleep(0)
        c0 = int(v.cnt0[0])
        view = v.data.view()
        view.flags.writeable = False
        func(view)
        cnt1 = int(v.cnt1[0])
        times = (int(v.atime[0]), int(v.atime[1]), int(v.writetime[0]), int(v.writetime[1]))
        whole = self.still_whole(c0)
        if whole and self._post_first_s:
            # A writer that posts before it counts rewrites the pixels, lowers the write
            # flag and only then posts: a frame replaced just before the check above shows
            # no sign of it yet. Its post follows within about the post-to-count delay
            # seen at the wakes: look again after twice that (decaying, for a writer
            # wrongly taken for one).
            time.sleep(min(2 * self._post_first_s, _POST_FIRST_GRACE_S))
            self._post_first_s *= 0.99
            whole = self.still_whole(c0)
        if not whole:
            self.torn += 1
            if int(v.cnt0[0]) == c0 and not self._settle(c0):
                self._resync()  # no count came after the post: the balance was wrong
            return None
        return self._info(c0, cnt1, times)

    def still_whole(self, cnt0: int) -> bool:
        """Tell whether frame ``cnt0`` taken from the pixel array is still whole there.

        The write flag is down, ``cnt0`` did not move, and no post came
        without its count (a writer that posts before it counts, pyMilk,
        replaced the pixels; see :meth:`_ahead`). A sender that sends the
        frame straight from the pixel array calls it after the send, while no
        other thread uses this reader.

        Parameters
        ----------
        cnt0
            Counter of the frame, as returned by :meth:`next_into`.

        Returns
        -------
        bool
        """
        v = self._stream._views()
        sem = self._live()
        return not v.write[0] and int(v.cnt0[0]) == cnt0 and self._ahead(sem) <= 0
