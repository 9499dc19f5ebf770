"""numba kernels behind :mod:`vampires.view.render` (private: use that module).

Imported only when the first frame is rendered, so ``vampires view --help``
and the core package never load numba. Every kernel is ``nogil`` and
``cache=True``, and writes into arrays the caller allocated once: the display
loop allocates nothing per frame.
"""

from __future__ import annotations

from typing import Any

import numba

__all__ = ["colourise", "reduce_frame"]

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def reduce_frame(
    frame: Any,  # noqa: ANN401 - numba arrays
    dark: Any,  # noqa: ANN401
    has_dark: Any,  # noqa: ANN401
    factor: Any,  # noqa: ANN401
    sample: Any,  # noqa: ANN401
    saturation: Any,  # noqa: ANN401
    out: Any,  # noqa: ANN401
    sat: Any,  # noqa: ANN401
) -> None:
    """Bin (block mean) or decimate (one pixel per block) a frame, minus a dark.

    ``out[i, j]`` is the mean of the ``factor`` x ``factor`` block (i, j) of
    ``frame - dark``, or its first pixel when ``sample``; ``sat[i, j]`` is 1
    when a raw pixel of the block (all of them, also when decimating) is at or
    above ``saturation``.
    """
    if factor == 1:  # the common full-resolution case without the block loops
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                v = frame[i, j]
                sat[i, j] = 1 if v >= saturation else 0
                out[i, j] = v - dark[i, j] if has_dark else v
        return
    norm = 1.0 / (factor * factor)
    for i in range(out.shape[0]):
        y0 = i * factor
        for j in range(out.shape[1]):
            x0 = j * factor
            acc = 0.0
            top = frame[y0, x0]
            for a in range(factor):
                row = frame[y0 + a]
                for b in range(factor):
                    v = row[x0 + b]
                    acc += v
                    top = max(top, v)
            sat[i, j] = 1 if top >= saturation else 0
            if sample:
                acc = frame[y0, x0]
                if has_dark:
                    acc -= dark[y0, x0]
                out[i, j] = acc
            else:
                if has_dark:
                    for a in range(factor):
                        drow = dark[y0 + a]
                        for b in range(factor):
                            acc -= drow[x0 + b]
                out[i, j] = acc * norm


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def colourise(
    image: Any,  # noqa: ANN401 - numba arrays
    sat: Any,  # noqa: ANN401
    lo: Any,  # noqa: ANN401
    hi: Any,  # noqa: ANN401
    lut: Any,  # noqa: ANN401
    sat_rgb: Any,  # noqa: ANN401
    show_sat: Any,  # noqa: ANN401
    out: Any,  # noqa: ANN401
) -> None:
    """Map ``image`` to RGB through a stretch + colour-map lookup table.

    ``t = clip((v - lo) / (hi - lo), 0, 1)`` indexes ``lut`` (N x 3 uint8,
    the stretch already folded in); saturated pixels get ``sat_rgb``.
    """
    top = lut.shape[0] - 1
    scale = top / (hi - lo) if hi > lo else 0.0
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            if show_sat and sat[i, j]:
                out[i, j, 0] = sat_rgb[0]
                out[i, j, 1] = sat_rgb[1]
                out[i, j, 2] = sat_rgb[2]
                continue
            t = (image[i, j] - lo) * scale
            k = 0 if not t > 0.0 else (top if t >= top else int(t + 0.5))
            out[i, j, 0] = lut[k, 0]
            out[i, j, 1] = lut[k, 1]
            out[i, j, 2] = lut[k, 2]
