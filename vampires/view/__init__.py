"""Live viewer of camera streams, local or over ZMQ (``vampires view``).

The core (:mod:`~vampires.view.source`, :mod:`~vampires.view.render`,
:mod:`~vampires.view.overlay`, :mod:`~vampires.view.status`,
:mod:`~vampires.view.model`) imports neither Qt nor numba; the window
(:mod:`vampires.view.window`, the :class:`Viewer`) needs the ``viewer`` extra
(``pip install 'vampires[viewer]'``: pyqtgraph on PySide6) and is imported
only when used::

    from vampires.view import Viewer

    viewer = Viewer(["vcam1", "tcp://sonne:5555/vcam2"], stretch="log")
    viewer.run()                       # until the window is closed
"""

from __future__ import annotations

import importlib

from vampires.view.model import StreamView, load_dark, save_frame
from vampires.view.render import COLORMAPS, STRETCHES, Renderer, RenderSettings
from vampires.view.source import LocalSource, RemoteSource, ViewTarget, open_source, parse_target

__all__ = [
    "COLORMAPS",
    "STRETCHES",
    "LocalSource",
    "RemoteSource",
    "RenderSettings",
    "Renderer",
    "StreamView",
    "ViewTarget",
    "Viewer",
    "load_dark",
    "open_source",
    "parse_target",
    "save_frame",
]


def __getattr__(name: str) -> object:
    if name == "Viewer":
        return importlib.import_module("vampires.view.window").Viewer
    raise AttributeError(name)
