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
    norm = 1.0 / (factor * factor)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            flag = 0
            acc = 0.0
            for a in range(factor):
                y = i * factor + a
                for b in range(factor):
                    x = j * factor + b
                    v = frame[y, x]
                    if v >= saturation:
                        flag = 1
                    if not sample:
                        acc += v
                        if has_dark:
                            acc -= dark[y, x]
            if sample:
                acc = frame[i * factor, j * factor]
                if has_dark:
                    acc -= dark[i * factor, j * factor]
                out[i, j] = acc
            else:
                out[i, j] = acc * norm
            sat[i, j] = flag


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
