"""vampires.fitslog: FITS cube logging (see :mod:`vampires.fitslog.logger`).

:func:`open_partial` (from :mod:`vampires.fitslog.partial`) reads the complete
frames of a cube while it is being written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vampires.fitslog.partial import PartialCube, open_partial

__all__ = ["PartialCube", "open_partial"]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - lazy re-export
    if name in __all__:
        from vampires.fitslog import partial

        return getattr(partial, name)
    msg = f"module 'vampires.fitslog' has no attribute {name!r}"
    raise AttributeError(msg)
