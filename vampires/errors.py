"""The one exception hierarchy of vampires.

Every error the library raises on purpose derives from :class:`VampiresError`,
and also from the builtin it resembles, so ``except ValueError`` keeps working
for callers that do not know about us::

    VampiresError
    ├── ConfigError (ValueError)          bad configuration value, table or argument
    ├── StreamError (OSError)             shared-memory stream problem
    │   ├── StreamNotFoundError (FileNotFoundError)
    │   ├── StreamExistsError (FileExistsError)
    │   ├── StreamVersionError            file is not an ImageStreamIO 2.00 stream
    │   ├── StreamLayoutError             truncated or inconsistent stream file
    │   ├── StreamClosedError             use after close()
    │   ├── StreamTimeout (TimeoutError)  no new frame in time
    │   ├── TornFrameError                frame changed while it was being copied
    │   └── KeywordError (ValueError)     keyword name, type, value or table full
    ├── CameraError                       camera refused or failed a command
    │   └── CameraTimeout (TimeoutError)
    ├── LoggerError                       FITS logger problem
    │   └── RecoverError                  a .tmp cube could not be recovered
    ├── LinkError (ConnectionError)       TCP / ZMQ link problem
    │   ├── LinkTimeout (TimeoutError)
    │   └── ProtocolError (ValueError)    malformed message on the wire
    ├── ControlError                      control-plane (daemon) problem
    │   ├── DaemonNotRunning              no daemon answers at the expected socket
    │   ├── DaemonAlreadyRunning
    │   ├── ControlTimeout (TimeoutError) daemon did not reply in time
    │   └── CommandError (ValueError)     daemon rejected a command
    └── FitsFormatError (ValueError)      file is not a readable FITS file
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CameraError",
    "CameraTimeout",
    "CommandError",
    "ConfigError",
    "ControlError",
    "ControlTimeout",
    "DaemonAlreadyRunning",
    "DaemonNotRunning",
    "FitsFormatError",
    "KeywordError",
    "LinkError",
    "LinkTimeout",
    "LoggerError",
    "ProtocolError",
    "RecoverError",
    "StreamClosedError",
    "StreamError",
    "StreamExistsError",
    "StreamLayoutError",
    "StreamNotFoundError",
    "StreamTimeout",
    "StreamVersionError",
    "TornFrameError",
    "VampiresError",
]


class VampiresError(Exception):
    """Root of every error raised on purpose by vampires."""


class ConfigError(VampiresError, ValueError):
    """A configuration value, data table or argument is invalid."""


class StreamError(VampiresError, OSError):
    """A shared-memory stream could not be created, opened, read or written."""


class StreamNotFoundError(StreamError, FileNotFoundError):
    """No stream file with that name exists in the shm directory."""


class StreamExistsError(StreamError, FileExistsError):
    """A stream with that name exists and ``exist_ok`` was not given."""


class StreamVersionError(StreamError):
    """The file is not an ImageStreamIO 2.00 stream (wrong version string)."""


class StreamLayoutError(StreamError):
    """The stream file is truncated or its metadata is inconsistent."""


class StreamClosedError(StreamError):
    """The stream object was used after ``close()``."""


class StreamTimeout(StreamError, TimeoutError):
    """No new frame was published within the timeout."""


class TornFrameError(StreamError):
    """The frame was being overwritten while it was copied (torn read)."""


class KeywordError(StreamError, ValueError):
    """A stream keyword name, type or value is invalid, or the table is full."""


class CameraError(VampiresError):
    """A camera refused or failed a command."""


class CameraTimeout(CameraError, TimeoutError):
    """A camera did not answer or produce a frame in time."""


class LoggerError(VampiresError):
    """The FITS logger failed or refused a command."""


class RecoverError(LoggerError):
    """A ``.tmp`` cube left by a killed logger could not be recovered."""


class LinkError(VampiresError, ConnectionError):
    """A TCP or ZMQ stream link failed."""


class LinkTimeout(LinkError, TimeoutError):
    """A link received nothing within its timeout."""


class ProtocolError(LinkError, ValueError):
    """A message on a link or control socket is malformed."""


class ControlError(VampiresError):
    """A control-plane operation (daemon command) failed."""


class DaemonNotRunning(ControlError):
    """No daemon answers at the expected control socket."""


class DaemonAlreadyRunning(ControlError):
    """A daemon for that target is already running."""


class ControlTimeout(ControlError, TimeoutError):
    """A daemon did not reply within the timeout."""


class CommandError(ControlError, ValueError):
    """A daemon rejected a command (unknown, malformed or invalid arguments).

    Parameters
    ----------
    message
        What was refused and why (the daemon's kind and name first).
    reply
        The daemon's error reply, when there was one.

    Attributes
    ----------
    reply
        The daemon's error reply (``{"ok": false, "error": ..., "error_type": ...}``),
        or None when the command was refused before it was sent.
    remote_type
        Name of the error class the daemon raised (``"ConfigError"``), from the
        reply's ``error_type`` field; None if the reply has none (clients map
        it back to a class, e.g. ``RemoteCamera``'s error table).
    remote_message
        The daemon's message without the type, or None.
    """

    def __init__(self, message: str, *, reply: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reply = reply

    @property
    def remote_type(self) -> str | None:
        """The ``error_type`` of the daemon's reply, or None."""
        kind = self.reply.get("error_type") if self.reply is not None else None
        return kind if isinstance(kind, str) else None

    @property
    def remote_message(self) -> str | None:
        """The ``error`` text of the daemon's reply, or None."""
        text = self.reply.get("error") if self.reply is not None else None
        return text if isinstance(text, str) else None


class FitsFormatError(VampiresError, ValueError):
    """A file is not a readable FITS file (or is truncated)."""
