"""``vampires link``: argument checking, daemons, status and stop."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import free_port, wait_for
from tests.link.linkhelpers import expected_frame, open_when_ready
from vampires.cli.link import main
from vampires.control import ControlClient, daemon_alive
from vampires.stream import Stream


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["tcp-send", "vcam1", "scexao6"], "expected HOST:PORT"),
        (["tcp-send", "vcam1", "scexao6:http"], "must be an integer 0-65535"),
        (["tcp-send", "vcam1", "scexao6:0"], "1-65535"),
        (["tcp-send", "../etc", "scexao6:5001"], "is invalid"),
        (["tcp-recv", "99999"], "0-65535"),
        (["tcp-recv", "5001", "--name", "a b"], "is invalid"),
        (["zmq-pub", "vcam1", "--bind", "scexao5:5555"], "ZMQ endpoint"),
        (["zmq-pub", "vcam1", "--bind", "tcp://*:5555", "--every", "0"], "every must be"),
        (["zmq-pub", "vcam1", "--bind", "tcp://*:5555", "--fps", "-3"], "max_fps must be"),
        (["zmq-sub", "scexao5:5555", "vcam1"], "ZMQ endpoint"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    argv: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err
    assert err.startswith(f"vampires link {argv[0]}:")


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--rt-priority", "0"], "real-time priority must be an integer 1-99"),
        (["--rt-priority", "100"], "real-time priority must be an integer 1-99"),
        (["--cpus", "999"], "cannot pin the link to CPUs [999]"),
        (["--cpus", "a,b"], "invalid literal"),
    ],
)
def test_scheduling_options_are_checked(
    extra: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    affinity = os.sched_getaffinity(0)
    try:
        assert main(["tcp-recv", "0", *extra]) == 2
    finally:
        os.sched_setaffinity(0, affinity)
    assert match in capsys.readouterr().err


def test_argparse_errors() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["tcp-recv", "notaport"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["teleport", "vcam1"])


def test_status_without_daemons(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 0
    assert "no link daemon running" in capsys.readouterr().out
    assert main(["stop", "vcam1.tcp-send"]) == 1
    assert "vcam1.tcp-send:" in capsys.readouterr().out


def test_port_in_use_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["tcp-recv", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err


@pytest.mark.integration
def test_daemons_status_and_stop(capsys: pytest.CaptureFixture[str]) -> None:
    shape = (16, 16)
    port = free_port()
    with Stream.create("vcam1", shape, np.uint16) as src:
        assert main(["tcp-recv", str(port), "--name", "vcam1_sc6", "--daemon"]) == 0
        assert main(["tcp-send", "vcam1", f"127.0.0.1:{port}", "--daemon"]) == 0
        try:
            out = capsys.readouterr().out
            assert "vcam1_sc6.tcp-recv: started (pid" in out
            assert "vcam1.tcp-send: started (pid" in out
            # a second sender for the same stream is refused
            assert main(["tcp-send", "vcam1", f"127.0.0.1:{port}", "--daemon"]) == 1
            assert "already running" in capsys.readouterr().err
            mirror = open_when_ready("vcam1_sc6")
            with mirror, mirror.reader() as reader:
                wait_for(lambda: _connected("vcam1.tcp-send"), what="sender connected")
                for cnt0 in range(1, 6):
                    src.write(expected_frame(cnt0, shape))
                    assert reader.next(5.0).cnt0 == cnt0
            with ControlClient("link", "vcam1_sc6.tcp-recv") as client:
                reply = client.call("status")
            assert reply["ok"]
            assert reply["role"] == "tcp-recv"
            assert reply["stream"] == "vcam1_sc6"
            assert reply["frames"] == 5
            assert reply["state"] == "connected"
            assert main(["status"]) == 0
            lines = capsys.readouterr().out.splitlines()
            assert len(lines) == 2
            assert any(line.startswith("vcam1.tcp-send: tcp-send vcam1") for line in lines)
        finally:
            assert main(["stop", "vcam1.tcp-send", "vcam1_sc6.tcp-recv"]) == 0
        wait_for(
            lambda: (
                not daemon_alive("link", "vcam1.tcp-send")
                and not daemon_alive("link", "vcam1_sc6.tcp-recv")
            ),
            what="daemons gone",
        )


def _connected(name: str) -> bool:
    with ControlClient("link", name) as client:
        return bool(client.call("status")["connected"])


@pytest.mark.integration
def test_foreground_ctrl_c_is_clean() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vampires", "link", "tcp-recv", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: daemon_alive("link", f"{port}.tcp-recv"), what="daemon up")
        proc.send_signal(2)  # SIGINT
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0
    text = out.decode()
    assert f"{port}.tcp-recv: tcp-recv" in text
    assert "Traceback" not in text


def test_command_import_is_light() -> None:
    code = (
        "import sys, vampires.cli.link; "
        "bad = [m for m in ('numba', 'astropy') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout
