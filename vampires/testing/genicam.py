"""Aravis's own fake GigE Vision camera, on the loopback interface, for tests and benchmarks.

``arv-fake-gv-camera-0.8`` (Debian package ``aravis-tools``) answers GVCP on
127.0.0.1 and streams a moving test pattern over GVSP: a real GenICam device
behind Aravis's real GigE Vision code, without hardware::

    with FakeGenicamCamera(serial="VTEST01") as fake:
        backend = GenicamBackend(device=fake.device_id)

It only ever listens on 127.0.0.1 (GigE Vision's control port 3956 there), so
one fake camera runs at a time on a machine.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from vampires.errors import CameraError

__all__ = ["FAKE_CAMERA_PROGRAM", "FakeGenicamCamera", "fake_camera_available"]

#: The Aravis fake camera program (Debian: aravis-tools).
FAKE_CAMERA_PROGRAM = "arv-fake-gv-camera-0.8"
_LOOPBACK = "127.0.0.1"


def fake_camera_available() -> str | None:
    """Return why the fake camera cannot run here, or None if it can."""
    if shutil.which(FAKE_CAMERA_PROGRAM) is None:
        return f"{FAKE_CAMERA_PROGRAM} not found (apt install aravis-tools)"
    try:
        from vampires.camera.backends.genicam import load_aravis

        load_aravis()
    except CameraError as exc:
        return str(exc)
    return None


class FakeGenicamCamera:
    """Run ``arv-fake-gv-camera-0.8 -i 127.0.0.1`` while in the ``with`` block.

    Parameters
    ----------
    serial
        Serial number of the fake camera (its Aravis id is ``Aravis-Fake-<serial>``).
    log
        File for the program's output (default: discarded).
    timeout
        Seconds to wait for Aravis to see the camera.
    """

    def __init__(
        self, serial: str = "VTEST01", *, log: Path | None = None, timeout: float = 10.0
    ) -> None:
        self.serial = serial
        self.log = log
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def device_id(self) -> str:
        """Aravis device id of the fake camera."""
        return f"Aravis-Fake-{self.serial}"

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the program and wait until Aravis lists the camera.

        Raises
        ------
        CameraError
            The program is missing, exited (port 3956 on 127.0.0.1 busy?), or
            Aravis does not see it within the timeout.
        """
        why = fake_camera_available()
        if why is not None:
            raise CameraError(why)
        if self._proc is not None and self._proc.poll() is None:
            return
        out = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                [FAKE_CAMERA_PROGRAM, "-i", _LOOPBACK, "-s", self.serial],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if self.log is not None and not isinstance(out, int):
                out.close()
        from vampires.camera.backends.genicam import list_devices

        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                msg = (
                    f"{FAKE_CAMERA_PROGRAM} exited with status {code} "
                    f"(is another fake camera holding {_LOOPBACK}:3956?)"
                )
                raise CameraError(msg)
            if any(d["id"] == self.device_id for d in list_devices()):
                return
            time.sleep(0.1)
        self.stop()
        msg = f"Aravis does not see {self.device_id} on {_LOOPBACK} after {self.timeout:g} s"
        raise CameraError(msg)

    def kill(self) -> None:
        """Kill the camera abruptly (SIGKILL: a pulled cable)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop the camera (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> FakeGenicamCamera:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
