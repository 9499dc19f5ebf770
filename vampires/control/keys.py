"""CURVE keys for control endpoints reachable from another host (``tcp://``).

A ``tcp://`` control endpoint is refused without keys: anyone who can reach the
port could otherwise drive the daemon. The key folder holds::

    server.key / server.key_secret      the daemon's key pair
    client.key / client.key_secret      the operator machine's key pair
    authorized/                         public keys of the clients allowed in

Create it once with :func:`generate_keys`, copy ``server.key``,
``client.key`` and ``client.key_secret`` to the client host, and pass
``curve_dir`` to :class:`~vampires.control.DaemonServer` and
:class:`~vampires.control.ControlClient`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vampires.errors import ConfigError

if TYPE_CHECKING:
    import zmq

__all__ = ["client_keys", "generate_keys", "start_authenticator"]


def generate_keys(folder: Path | str) -> Path:
    """Create a server and a client CURVE key pair and authorize the client.

    Parameters
    ----------
    folder
        Created with mode 0700 if missing; existing keys are kept.

    Returns
    -------
    Path
        The folder.
    """
    import zmq.auth

    path = Path(folder)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for who in ("server", "client"):
        if not (path / f"{who}.key_secret").exists():
            zmq.auth.create_certificates(path, who)
            (path / f"{who}.key_secret").chmod(0o600)
    authorized = path / "authorized"
    authorized.mkdir(mode=0o700, exist_ok=True)
    shutil.copy(path / "client.key", authorized / "client.key")
    return path


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    try:
        public, private = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        msg = f"cannot read CURVE key {path}: {exc}; create keys with generate_keys()"
        raise ConfigError(msg) from exc
    if secret and private is None:
        msg = f"{path} holds no secret key; use the .key_secret file"
        raise ConfigError(msg)
    return public, private


def client_keys(folder: Path) -> dict[str, bytes]:
    """Load the client key pair and the server's public key from ``folder``.

    Parameters
    ----------
    folder
        Key folder made by :func:`generate_keys`.

    Returns
    -------
    dict
        ``{"public", "secret", "server"}``.

    Raises
    ------
    ConfigError
        A key file is missing or unreadable.
    """
    public, secret = _load(folder / "client.key_secret", secret=True)
    server, _ = _load(folder / "server.key", secret=False)
    if secret is None:
        msg = (
            f"{folder / 'client.key_secret'} holds no secret key; create keys with generate_keys()"
        )
        raise ConfigError(msg)
    return {"public": public, "secret": secret, "server": server}


def start_authenticator(
    ctx: zmq.Context[zmq.Socket[bytes]], sock: zmq.Socket[bytes], folder: Path
) -> Any:  # noqa: ANN401 - zmq.auth.thread.ThreadAuthenticator, imported lazily
    """Make ``sock`` a CURVE server that admits only the authorized clients.

    Parameters
    ----------
    ctx
        The socket's context.
    sock
        The REP socket, before it binds its ``tcp://`` endpoint.
    folder
        Key folder made by :func:`generate_keys`.

    Returns
    -------
    zmq.auth.thread.ThreadAuthenticator
        Stop it when closing the socket.

    Raises
    ------
    ConfigError
        Keys missing or unreadable.
    """
    from zmq.auth.thread import ThreadAuthenticator

    public, secret = _load(folder / "server.key_secret", secret=True)
    authorized = folder / "authorized"
    if not authorized.is_dir():
        msg = f"no {authorized} folder of client public keys; create keys with generate_keys()"
        raise ConfigError(msg)
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(authorized))
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return auth
