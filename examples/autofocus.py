"""Autofocus over the 20 FPS ZMQ link, as the autofocus script on sonne does.

Steps a focus stage through a range of positions, measures the PSF width on
frames received over ZMQ (no shared memory needed on the receiving side),
and fits a parabola to width² to find the best focus. The frames travel
Blosc2-compressed (the publisher compresses for subscribers that can decode,
the subscriber decompresses transparently: ``frame`` is a plain array) under
a bandwidth cap, as on the 500 Mbps link to sonne.

Here the camera is simulated and its ``set_defocus`` is the focus stage; on
the instrument, ``move`` would be the real stage and ``--connect`` the ZMQ
endpoint of vcam1 on scexao5 (e.g. ``tcp://scexao5:PORT``).

Run: ``python examples/autofocus.py [--best 0.3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vampires import Camera, ZmqPublisher, ZmqSubscriber
from vampires.camera.backends.simulated import SimulatedBackend


def psf_width(frame: np.ndarray, half: int = 24) -> float:
    """Second-moment radius [px] in a box around the brightest pixel, background removed."""
    py, px = np.unravel_index(np.argmax(frame), frame.shape)
    box = frame[max(py - half, 0) : py + half + 1, max(px - half, 0) : px + half + 1]
    img = box.astype(np.float64) - np.median(frame)
    img[img < 0] = 0
    y, x = np.indices(img.shape)
    total = img.sum()
    cy, cx = (img * y).sum() / total, (img * x).sum() / total
    return float(np.sqrt((img * ((y - cy) ** 2 + (x - cx) ** 2)).sum() / total))


def autofocus(sub: ZmqSubscriber, move, positions: np.ndarray, frames: int = 3) -> float:
    """Move through ``positions``, average the PSF width of a few fresh frames each, fit."""
    widths = []
    for pos in positions:
        move(pos)
        sent_after = time.time()
        samples = []
        while len(samples) < frames:
            frame, meta = sub.recv(timeout=5.0)
            if meta.acquisition_time > sent_after:  # only frames taken after the move
                samples.append(psf_width(frame))
        widths.append(np.mean(samples))
        print(f"focus {pos:+.3f} mm: PSF width {widths[-1]:.2f} px")
    a, b, _ = np.polyfit(positions, np.square(widths), 2)
    return float(-b / (2 * a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--best", type=float, default=0.3, help="simulated best focus [mm]")
    args = parser.parse_args()
    stage = SimulatedBackend(seed=1)  # the simulated camera's optics are our focus stage
    with (
        Camera("vcam1", backend=stage, crop="ONEARC", tint=5e-3, fps=50, restore=False),
        ZmqPublisher("vcam1", bind="tcp://127.0.0.1:*", max_fps=20, max_mbps=200) as pub,
        ZmqSubscriber(pub.endpoint, "vcam1") as sub,
    ):
        best = autofocus(sub, lambda p: stage.set_defocus(p - args.best), np.linspace(-1, 1, 9))
        link = sub.status()
    print(f"best focus {best:+.3f} mm (true {args.best:+.3f} mm)")
    print(f"link: {link.rate_fps:.1f} fps, compression ratio {link.ratio:.2f}, "
          f"{link.wire_mbps:.2f} Mbps on the wire")  # fmt: skip


if __name__ == "__main__":
    main()
