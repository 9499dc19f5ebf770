"""Which backend drives a camera: ``--backend`` > ``--sim`` > config file > simulated.

A backend is named by a short spec, ``KIND[:DEVICE]``:

============  ==============================================================
``sim``       the simulator (:class:`~vampires.camera.backends.simulated.SimulatedBackend`)
``dcam``      Hamamatsu DCAM-API through pylablib (ORCA-Quest); DEVICE is the
              camera index (``dcam:1``) or its serial (``dcam:S/N: 001234`` or
              ``dcam:001234``); default index 0. ``pip install 'vampires[dcam]'``
``genicam``   any GenICam camera through Aravis 0.8 (USB3 Vision, GigE Vision:
              the Flea3); DEVICE is an Aravis device id, a serial number, an
              address or an index (``genicam:0``); default the first camera.
              ``apt install gir1.2-aravis-0.8`` and ``pip install 'vampires[genicam]'``
============  ==============================================================

The config file (``$VAMPIRES_CONFIG``, see :mod:`vampires.config`) maps each
camera to its spec, so that a plain ``vampires camstart vcam1`` on the camera
computer drives the hardware::

    [backends]
    vcam1 = "dcam:S/N: 000123"
    vcam2 = "dcam:S/N: 000456"
    [backends.vpupcam]                 # table form: spec + backend options
    backend = "genicam:Point Grey Research-Flea3 FL3-U3-13S2M-13370001"
    gain = "max"                       # GenicamBackend(gain=..., pixel_format=...,
    trigger_source = "Line0"           #   trigger_source=..., buffers=...)

With neither an option nor a config entry the camera is simulated, and every
status line names the backend it runs on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from vampires._checks import ShmDir
from vampires.errors import CameraError, ConfigError

if TYPE_CHECKING:
    from vampires.camera.backends.base import Backend
    from vampires.config import Config

__all__ = [
    "BACKEND_KINDS",
    "BackendSpec",
    "check_backend",
    "make_backend",
    "parse_backend_spec",
    "resolve_backend",
]

#: Backend kinds accepted in a spec.
BACKEND_KINDS = ("sim", "dcam", "genicam")
_ALIASES = {"sim": "sim", "simulated": "sim", "dcam": "dcam", "genicam": "genicam"}


@attrs.frozen(kw_only=True)
class BackendSpec:
    """A parsed backend spec (``KIND[:DEVICE]``).

    Attributes
    ----------
    kind
        ``"sim"``, ``"dcam"`` or ``"genicam"``.
    device
        Device selector (index, serial, id or address), or None for the first.
    options
        Keyword arguments for the backend's constructor (from the config file).
    """

    kind: str = attrs.field(validator=attrs.validators.in_(BACKEND_KINDS))
    device: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)

    def __str__(self) -> str:
        return self.kind if self.device is None else f"{self.kind}:{self.device}"


def parse_backend_spec(obj: object) -> BackendSpec:
    """Turn ``"dcam:1"`` (argv, config) into a :class:`BackendSpec`.

    Raises
    ------
    ConfigError
        Not a string, or an unknown kind, or an empty device after ``:``.
    """
    if isinstance(obj, BackendSpec):
        return obj
    if not isinstance(obj, str) or not obj.strip():
        msg = f"backend must be one of sim, dcam[:DEVICE], genicam[:DEVICE]. Got {obj!r}"
        raise ConfigError(msg)
    kind, sep, device = obj.strip().partition(":")
    canonical = _ALIASES.get(kind.strip().lower())
    if canonical is None:
        msg = f"backend must be one of sim, dcam[:DEVICE], genicam[:DEVICE]. Got {obj!r}"
        raise ConfigError(msg)
    device = device.strip()
    if sep and not device:
        msg = f"backend {obj!r}: nothing after ':' (give a device, or drop the ':')"
        raise ConfigError(msg)
    if canonical == "sim" and device:
        msg = f"backend {obj!r}: the simulator takes no device"
        raise ConfigError(msg)
    return BackendSpec(kind=canonical, device=device or None)


def resolve_backend(
    name: str, config: Config, *, backend: str | None = None, sim: bool = False
) -> BackendSpec:
    """Decide the backend of camera ``name``.

    Parameters
    ----------
    name
        Camera name.
    config
        Settings; its ``[backends]`` table maps camera names to specs.
    backend
        ``--backend`` value (wins over everything).
    sim
        ``--sim`` given.

    Returns
    -------
    BackendSpec
        ``backend`` if given, else ``sim`` if ``sim``, else the config's entry
        for ``name``, else the simulator.

    Raises
    ------
    ConfigError
        ``--sim`` together with a hardware ``--backend``, or a bad spec.
    """
    if backend is not None:
        spec = parse_backend_spec(backend)
        if sim and spec.kind != "sim":
            msg = f"camera {name}: --sim and --backend {backend} contradict each other; give one"
            raise ConfigError(msg)
        return spec
    if sim:
        return BackendSpec(kind="sim")
    table = config.sites.get("backends", {})
    if name not in table:
        return BackendSpec(kind="sim")
    entry = table[name]
    try:
        if isinstance(entry, dict):
            options = {k: v for k, v in entry.items() if k != "backend"}
            spec = parse_backend_spec(entry.get("backend"))
            if options and spec.kind == "sim":
                msg = f"the simulator takes no options (got {sorted(options)})"
                raise ConfigError(msg)
            return attrs.evolve(spec, options=options)
        return parse_backend_spec(entry)
    except ConfigError as exc:
        msg = f"config file, [backends] {name}: {exc}"
        raise ConfigError(msg) from exc


def check_backend(spec: BackendSpec) -> None:
    """Check the backend's library is installed and its device is seen (nothing is opened).

    Raises
    ------
    CameraError
        One line saying what to install, or which device was looked for and
        what was seen instead.
    """
    if spec.kind == "genicam":
        from vampires.camera.backends.genicam import find_device

        find_device(spec.device)
    elif spec.kind == "dcam":
        from vampires.camera.backends.dcam import find_device as find_dcam

        find_dcam(spec.device)


def make_backend(
    spec: BackendSpec,
    *,
    shm_dir: ShmDir = None,
    deterministic: bool = False,
    trigger_stream: str | None = None,
) -> Backend:
    """Build (not open) the backend a spec names.

    Parameters
    ----------
    spec
        The backend spec.
    shm_dir
        Shared-memory folder (simulated trigger stream).
    deterministic, trigger_stream
        Simulator options; refused for hardware backends.

    Raises
    ------
    ConfigError
        Simulator-only options with a hardware backend.
    CameraError
        The backend's library is missing (one line saying what to install).
    """
    if spec.kind == "sim":
        from vampires.camera.backends.simulated import SimulatedBackend

        return SimulatedBackend(
            deterministic=deterministic, trigger_stream=trigger_stream, shm_dir=shm_dir
        )
    if deterministic or trigger_stream is not None:
        msg = f"--deterministic and --trigger-stream are simulator options (backend {spec})"
        raise ConfigError(msg)
    if spec.kind == "genicam":
        from vampires.camera.backends.genicam import GenicamBackend

        return GenicamBackend(device=spec.device, **_options(spec))
    if spec.kind == "dcam":
        from vampires.camera.backends.dcam import DcamBackend

        return DcamBackend(device=spec.device, **_options(spec))
    msg = f"backend {spec}: not available"  # pragma: no cover - kinds are validated
    raise CameraError(msg)


def _options(spec: BackendSpec) -> dict[str, Any]:
    """Options as keyword arguments; unknown names are a ConfigError, not a TypeError."""
    import inspect

    cls: type
    if spec.kind == "genicam":
        from vampires.camera.backends.genicam import GenicamBackend as cls
    else:
        from vampires.camera.backends.dcam import DcamBackend as cls
    known = set(inspect.signature(cls).parameters) - {"device"}
    unknown = sorted(set(spec.options) - known)
    if unknown:
        msg = (
            f"backend {spec}: unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
        raise ConfigError(msg)
    return dict(spec.options)
