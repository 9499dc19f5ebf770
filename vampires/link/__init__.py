"""Stream links between computers: full-rate TCP mirror and throttled ZMQ publish/subscribe.

::

    from vampires.link import TcpReceiver, TcpSender, ZmqPublisher, ZmqSubscriber

    with TcpReceiver(5001, name="vcam1", bind="0.0.0.0") as receiver:   # scexao6
        ...
    with TcpSender("vcam1", "scexao6", 5001) as sender:                 # scexao5
        ...
    with ZmqSubscriber("tcp://scexao5:5555", "vcam1", timeout=5.0) as sub:
        for frame, meta in sub:
            ...

Wire formats: :mod:`vampires.link.protocol` (TCP), :mod:`vampires.link.zmq_protocol` (ZMQ),
and ``docs/protocols.md``.
"""

from __future__ import annotations

from vampires.link.status import LinkStatus
from vampires.link.tcp import TcpReceiver, TcpSender
from vampires.link.zmq import ZmqPublisher, ZmqSubscriber
from vampires.link.zmq_protocol import ZmqMeta

__all__ = ["LinkStatus", "TcpReceiver", "TcpSender", "ZmqMeta", "ZmqPublisher", "ZmqSubscriber"]
