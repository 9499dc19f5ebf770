"""The one daemon entry: stop signals, errors, exit codes."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from vampires.control.entry import STOP_SIGNALS, run_daemon, stop_on_signals
from vampires.errors import CameraError


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_each_stop_signal_sets_stop_and_handlers_come_back(signum):
    before = signal.getsignal(signum)
    stop = threading.Event()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signum)
        assert stop.wait(2.0)
    assert signal.getsignal(signum) == before


def test_union_of_the_old_signal_sets():
    assert set(STOP_SIGNALS) == {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def test_run_daemon_exit_codes(caplog):
    def clean(stop: threading.Event) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2.0)
        return 0

    def failing(stop: threading.Event) -> int:
        msg = "backend gone"
        raise CameraError(msg)

    assert run_daemon("camera vcam1", clean) == 0
    assert run_daemon("camera vcam1", failing) == 1
    assert "camera vcam1: stopped on error: backend gone" in caplog.text


def test_outside_main_thread_installs_nothing():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def body() -> None:
        with stop_on_signals(threading.Event()):
            seen.append(signal.getsignal(signal.SIGTERM))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [before]
