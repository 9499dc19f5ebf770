"""Full-rate TCP mirror of a stream (scexao5 -> scexao6), one connection per link.

:class:`TcpSender` connects to a :class:`TcpReceiver`, sends a versioned
``HELLO`` with the stream metadata, then every new frame with its counters,
times and (only when they changed) its keywords; the receiver creates (or
re-creates) the local stream and publishes each frame with the *sender's*
``cnt0`` / ``cnt1``, so real-time code on the receiving host sees the same
counters as the camera host. Wire format: :mod:`vampires.link.protocol`,
``docs/protocols.md``.

Copies: none, or one when a camera writing in place is as fast as the link
---------------------------------------------------------------------------
The receiver ``recv_into`` s the pixel bytes straight into the destination
stream (``Stream.write_with``): no receive buffer, no copy.

On a stream with a circular buffer written by our ``Stream`` (camera and
mirror streams), the sender sends the pixels straight from the frame's
circular-buffer slot (``sendmsg`` on the shared memory): no copy in user
space. The writer rewrites a slot only ``CBsize`` frames later and zeroes its
``cnt0`` first; once ``sendmsg`` has returned the kernel holds every byte, and
the sender checks that the slot still holds the frame (the check of
``StreamReader.next_into``). The 8-byte trailer that follows the pixels says
``VALID`` or ``TORN``; the receiver reads it inside its ``write_with`` fill
and, on ``TORN``, raises: nothing is published, and ``write_with`` puts the
previous frame back from the mirror's own circular-buffer slot, so a
``read()`` on the receiving side never sees the torn bytes. Torn frames are
counted (``torn``, both sides) and show as a counter gap (``skipped``).

Streams without that slot metadata (no circular buffer, or written by the C
library, camstack or pyMilk: frames overwritten in place) are sent straight
from the live pixel array while a send takes under half a frame period, with
the same check after the send (write flag, ``cnt0``, and no post without its
count, for writers that post before they count); the grabber waits during
such a send. A camera about as fast as the link leaves no time for that: then
the grabber copies each frame once, through the torn-frame check of
``StreamReader.next_into``, into one of a few send buffers (``depth``), in
parallel with the previous frame's send; their trailer is always ``VALID``.

The grabber thread waits on the stream's semaphore and hands frames (slot
views or copies) to the socket thread through a small queue: one frame waits
while one is sent when sending from slots (the socket never idles, and a
frame is picked as late as possible), ``depth`` frames on the copy path. With
a circular buffer the grabber reads with ``catch_up=True``: frames it woke too
late for are taken from the buffer, in order, so a descheduled grabber or a
burst from the camera driver loses nothing while the lag stays within
three quarters of the buffer (``CBsize - max(3, CBsize // 4)`` frames: a frame
further behind would likely be overwritten before it is sent); beyond, it
jumps to the newest frame. When the link stays slower than the camera the grabber takes nothing
until there is room, then the next frame (in order, or the newest), so the
camera never waits, what is sent is at most about ``3 CBsize / 4`` (copy path:
``depth``) frames old, and the frames not sent are counted as skipped
(counter gaps). Frames go out in order, never twice.

Reconnection: either side may restart. The sender reconnects with exponential
back-off (50 ms .. 2 s) and resumes at the newest frame; the receiver keeps
listening, takes the newest connection, and counts the frames missed in
between from the counter gap. Both log every transition.
"""

from __future__ import annotations

from vampires.link.tcp_receiver import TcpReceiver
from vampires.link.tcp_sender import TcpSender

__all__ = ["TcpReceiver", "TcpSender"]
