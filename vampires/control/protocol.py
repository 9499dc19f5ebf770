"""The wire format of the control plane: names, endpoints, requests, replies.

A request is one ZMQ message holding a UTF-8 JSON object::

    {"command": "set", "args": {"cube_size": 250}}

``args`` is optional (an empty object when absent); no other key is allowed.
A reply is one JSON object: ``{"ok": true, "time": <unix s>, ...}`` on
success, ``{"ok": false, "time": <unix s>, "error": "<what and why>",
"error_type": "ConfigError"}`` on failure; a daemon that has a state adds
``"state"`` to both. ``error_type`` names the :mod:`vampires.errors` class the
daemon raised (``CommandError`` for the control plane's own refusals; absent
for an unexpected failure), so a client raises the same class again
without parsing the message (:class:`~vampires.errors.CommandError` carries it
as ``remote_type``).

Everything here is pure (no sockets), so it is tested without processes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from vampires._checks import ShmDir
from vampires.config import control_dir
from vampires.errors import CommandError, ConfigError
from vampires.stream.names import check_stream_name

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Arg",
    "Command",
    "Handler",
    "decode_reply",
    "encode",
    "endpoint",
    "error_text",
    "lock_path",
    "parse_request",
    "parse_socket_name",
    "socket_path",
    "validate_args",
    "validate_kind",
    "validate_name",
]

#: Largest request or reply accepted; bigger messages are dropped by ZMQ itself.
MAX_MESSAGE_BYTES = 64 * 1024

#: ``sockaddr_un.sun_path`` is 108 bytes on Linux, including the final NUL.
_MAX_IPC_PATH = 107

_KIND_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: A daemon name is a stream name (the stream rule) short enough for a unix socket path.
_MAX_NAME = 64
_COMMAND_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")

#: A command handler: validated arguments in, JSON-able result out.
Handler = Callable[[dict[str, Any]], dict[str, Any]]

ArgType = Literal["int", "float", "str", "bool"]


def validate_kind(kind: object) -> str:
    """Check a daemon kind (``camera``, ``logger``, ``link`` ...).

    Parameters
    ----------
    kind
        Lower-case identifier without ``-`` (it separates kind and name in
        the socket file name).

    Returns
    -------
    str
        ``kind`` unchanged.

    Raises
    ------
    ConfigError
        Not a string of ``[a-z][a-z0-9_]*`` (at most 32 characters).
    """
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        msg = f"daemon kind must match [a-z][a-z0-9_]* (at most 32 characters), got {kind!r}"
        raise ConfigError(msg)
    return kind


def validate_name(name: object) -> str:
    """Check a daemon name (a stream name such as ``vcam1``, or ``vcam1.tcp-send``).

    A daemon name follows the stream name rule
    (:func:`vampires.stream.check_stream_name`) and has at most 64 characters.

    Parameters
    ----------
    name
        Letters, digits, ``_``, ``.``, ``+`` and ``-``; no ``/``, no leading dot.

    Returns
    -------
    str
        ``name`` unchanged.

    Raises
    ------
    ConfigError
        Empty, too long (> 64), or with a character that could escape the
        control folder.
    """
    valid = check_stream_name(name, what="daemon name", error=ConfigError)
    if len(valid) > _MAX_NAME:
        msg = (
            f"daemon name {valid!r} is invalid: it is {len(valid)} characters long, the "
            f"limit is {_MAX_NAME} (it is part of a unix socket path)"
        )
        raise ConfigError(msg)
    return valid


def socket_path(kind: str, name: str, shm_dir: ShmDir = None) -> Path:
    """Return the ipc socket file of a daemon: ``<shm>/vampires/<kind>-<name>.sock``.

    Parameters
    ----------
    kind, name
        Validated with :func:`validate_kind` and :func:`validate_name`.
    shm_dir
        The shm folder; defaults to the current ``MILK_SHM_DIR`` resolution.

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        Bad kind or name, or a path too long for a unix socket.
    """
    path = (
        control_dir(Path(shm_dir) if shm_dir is not None else None)
        / f"{validate_kind(kind)}-{validate_name(name)}.sock"
    )
    if len(str(path).encode()) > _MAX_IPC_PATH:
        msg = (
            f"control socket path {path} is longer than the {_MAX_IPC_PATH} bytes a unix "
            f"socket allows; use a shorter MILK_SHM_DIR or daemon name"
        )
        raise ConfigError(msg)
    return path


def lock_path(kind: str, name: str, shm_dir: ShmDir = None) -> Path:
    """Return the lock file a running daemon holds (``<kind>-<name>.lock``).

    Parameters
    ----------
    kind, name, shm_dir
        As for :func:`socket_path`.

    Returns
    -------
    Path
    """
    return socket_path(kind, name, shm_dir).with_suffix(".lock")


def endpoint(kind: str, name: str, shm_dir: ShmDir = None) -> str:
    """Return the ZMQ endpoint ``ipc://<socket path>`` of a daemon.

    Parameters
    ----------
    kind, name, shm_dir
        As for :func:`socket_path`.

    Returns
    -------
    str
    """
    return f"ipc://{socket_path(kind, name, shm_dir)}"


def parse_socket_name(filename: str) -> tuple[str, str] | None:
    """Split a socket file name ``<kind>-<name>.sock`` into ``(kind, name)``.

    Parameters
    ----------
    filename
        A base name found in the control folder.

    Returns
    -------
    tuple of str or None
        None when the name does not follow the pattern.
    """
    if not filename.endswith(".sock"):
        return None
    kind, sep, name = filename[: -len(".sock")].partition("-")
    if not sep or not _KIND_RE.fullmatch(kind):
        return None
    try:
        return kind, validate_name(name)
    except ConfigError:
        return None


def _reject_constant(token: str) -> float:
    msg = f"{token} is not valid JSON"
    raise ValueError(msg)


def _loads(raw: bytes) -> object:
    if len(raw) > MAX_MESSAGE_BYTES:
        msg = f"message of {len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"
        raise ValueError(msg)
    text = raw.decode("utf-8")
    return json.loads(text, parse_constant=_reject_constant)


@attrs.frozen(kw_only=True)
class Arg:
    """Schema of one command argument.

    Attributes
    ----------
    type
        ``"int"`` (bool refused), ``"float"`` (int accepted, converted; NaN and
        infinities refused), ``"str"`` or ``"bool"``.
    required
        The request must carry it.
    choices
        Allowed values, if limited.
    minimum, maximum
        Inclusive bounds for numbers.
    help
        One line for ``help`` replies and the control screen.
    """

    type: ArgType
    required: bool = False
    choices: tuple[object, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    def check(self, command: str, name: str, value: object) -> object:
        """Return ``value`` converted to the declared type.

        Parameters
        ----------
        command, name
            For the error message.
        value
            The decoded JSON value.

        Returns
        -------
        object

        Raises
        ------
        CommandError
            Wrong type, out of bounds or not one of the choices.
        """
        where = f"{command}: argument {name!r}"
        ok: bool
        if self.type == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if isinstance(value, int | float):
                value = float(value)
                ok = ok and math.isfinite(value)
        elif self.type == "str":
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, bool)
        if not ok:
            msg = f"{where} must be {self.type} (got {value!r})"
            raise CommandError(msg)
        if self.choices is not None and value not in self.choices:
            msg = f"{where} must be one of {list(self.choices)} (got {value!r})"
            raise CommandError(msg)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                msg = f"{where} must be >= {self.minimum:g} (got {value!r})"
                raise CommandError(msg)
            if self.maximum is not None and value > self.maximum:
                msg = f"{where} must be <= {self.maximum:g} (got {value!r})"
                raise CommandError(msg)
        return value


@attrs.frozen(kw_only=True)
class Command:
    """A daemon command: its handler and the schema of its arguments.

    Attributes
    ----------
    func
        Called with the validated arguments; returns a JSON-able dict merged
        into the reply (a ``"time"`` key overrides the handling time, so a
        handler reports when its change took effect).
    args
        Argument name -> :class:`Arg`. Unknown arguments are refused.
    help
        One line shown by the ``help`` command.
    strict
        Check ``args`` against the schema (default). A plain handler given to
        the server without a schema gets ``strict=False``: it receives the
        decoded arguments as they are and must check them itself.
    """

    func: Handler
    args: Mapping[str, Arg] = attrs.field(factory=dict)
    help: str = ""
    strict: bool = True

    def describe(self) -> dict[str, Any]:
        """Return a JSON-able description for the ``help`` command."""
        return {
            "help": self.help,
            "args": {
                name: {"type": a.type, "required": a.required, "help": a.help}
                for name, a in self.args.items()
            },
        }


def validate_args(command: str, spec: Command, args: Mapping[str, object]) -> dict[str, Any]:
    """Check ``args`` against the schema of ``command``.

    Parameters
    ----------
    command
        Command name, for messages.
    spec
        The command's schema.
    args
        Decoded arguments.

    Returns
    -------
    dict
        Converted arguments.

    Raises
    ------
    CommandError
        Unknown, missing or ill-typed argument.
    """
    if not spec.strict:
        return dict(args)
    unknown = sorted(set(args) - set(spec.args))
    if unknown:
        allowed = ", ".join(sorted(spec.args)) or "none"
        msg = f"{command}: unknown argument(s) {unknown} (allowed: {allowed})"
        raise CommandError(msg)
    out: dict[str, Any] = {}
    for name, arg in spec.args.items():
        if name in args:
            out[name] = arg.check(command, name, args[name])
        elif arg.required:
            msg = f"{command}: missing required argument {name!r} ({arg.type})"
            raise CommandError(msg)
    return out


def parse_request(raw: bytes) -> tuple[str, dict[str, Any]]:
    """Decode and check the envelope of a request.

    Parameters
    ----------
    raw
        The message bytes as received.

    Returns
    -------
    tuple
        ``(command, args)``; the arguments are not yet checked against the
        command's schema (see :func:`validate_args`).

    Raises
    ------
    CommandError
        Not UTF-8 JSON, not an object, missing or bad ``command``, ``args``
        not an object, or extra keys.
    """
    try:
        request = _loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        msg = f"malformed request: not a UTF-8 JSON object ({type(exc).__name__}: {exc})"
        raise CommandError(msg[:300]) from None
    if not isinstance(request, dict):
        msg = f"malformed request: expected a JSON object, got {type(request).__name__}"
        raise CommandError(msg)
    extra = sorted(set(request) - {"command", "args"})
    if extra:
        msg = f"malformed request: unexpected key(s) {extra[:5]}; allowed: 'command', 'args'"
        raise CommandError(msg[:300])
    command = request.get("command")
    if not isinstance(command, str) or not _COMMAND_RE.fullmatch(command):
        msg = f"malformed request: 'command' must be a short lower-case name, got {command!r}"
        raise CommandError(msg[:300])
    args = request.get("args", {})
    if not isinstance(args, dict):
        msg = f"malformed request: 'args' must be a JSON object, got {type(args).__name__}"
        raise CommandError(msg)
    return command, args


def encode(message: Mapping[str, Any]) -> bytes:
    """Encode a request or reply as compact UTF-8 JSON.

    Parameters
    ----------
    message
        JSON-able mapping (no NaN or infinity).

    Returns
    -------
    bytes

    Raises
    ------
    ValueError, TypeError
        The mapping is not strictly JSON-able.
    """
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode()


def error_text(reply: Mapping[str, Any], command: str | None = None) -> str:
    """Return the human text of an error reply: ``"<error_type>: <error>"``.

    The type is left out for :class:`~vampires.errors.CommandError` (the
    control plane's own refusals: unknown command, bad arguments) and when
    the reply has none (an unexpected failure in the daemon).

    Parameters
    ----------
    reply
        A reply with ``ok`` false.
    command
        The command sent, for the text of a reply without ``error``.

    Returns
    -------
    str
    """
    text = reply.get("error")
    if not isinstance(text, str):
        text = f"{command} refused" if command else "refused"
    kind = reply.get("error_type")
    if isinstance(kind, str) and kind != "CommandError":
        return f"{kind}: {text}"
    return text


def decode_reply(raw: bytes) -> dict[str, Any]:
    """Decode a reply and check it has a boolean ``ok``.

    Parameters
    ----------
    raw
        The message bytes.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        Not a JSON object with a boolean ``ok``.
    """
    reply = _loads(raw)
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        msg = "reply is not a JSON object with a boolean 'ok'"
        raise ValueError(msg)
    return reply


#: The operator command that stops a daemon of each kind.
_STOP_COMMANDS = {
    "camera": "vampires camstop {name}",
    "logger": "vampires logger stop {name}",
    "link": "vampires link stop {name}",
}


def stop_hint(kind: str, name: str) -> str:
    """Return the command an operator types to stop the daemon ``kind``/``name``.

    Parameters
    ----------
    kind, name
        The daemon's kind and name.

    Returns
    -------
    str
        e.g. ``"vampires camstop vcam1"``.
    """
    return _STOP_COMMANDS.get(kind, "vampires {kind} stop {name}").format(kind=kind, name=name)
