"""Pure parts of the control plane: names, paths, request envelope, schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vampires.control.protocol import (
    Arg,
    Command,
    decode_reply,
    encode,
    parse_request,
    parse_socket_name,
    socket_path,
    validate_args,
    validate_kind,
    validate_name,
)
from vampires.control.server import DaemonServer
from vampires.errors import CommandError, ConfigError


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "x" * 65, "a b", 3, None])
def test_bad_names_are_refused(name: object) -> None:
    with pytest.raises(ConfigError, match="daemon name"):
        validate_name(name)


@pytest.mark.parametrize("kind", ["", "Logger", "log-ger", "1x", "x" * 33])
def test_bad_kinds_are_refused(kind: str) -> None:
    with pytest.raises(ConfigError, match="daemon kind"):
        validate_kind(kind)


def test_socket_path_layout(shm_dir: Path) -> None:
    assert socket_path("logger", "vcam1") == shm_dir / "vampires" / "logger-vcam1.sock"
    assert parse_socket_name("logger-vcam1.sock") == ("logger", "vcam1")
    assert parse_socket_name("link-vcam1-mirror.sock") == ("link", "vcam1-mirror")
    assert parse_socket_name("logger-vcam1.lock") is None
    assert parse_socket_name("nokind.sock") is None


def test_socket_path_too_long_is_clear(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    with pytest.raises(ConfigError, match="longer than"):
        socket_path("logger", "vcam1", deep)


def test_parse_request_accepts_the_envelope() -> None:
    assert parse_request(b'{"command": "on"}') == ("on", {})
    assert parse_request(b'{"command": "set", "args": {"cube_size": 5}}') == (
        "set",
        {"cube_size": 5},
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'"on"',
        b"{}",
        b'{"command": 3}',
        b'{"command": "ON"}',
        b'{"command": "on", "args": []}',
        b'{"command": "on", "extra": 1}',
        b'{"command": "set", "args": {"x": NaN}}',
        b"[" * 5000 + b"]" * 5000,
        b'{"command": "' + b"a" * 70000 + b'"}',
    ],
)
def test_parse_request_refuses_malformed(raw: bytes) -> None:
    with pytest.raises(CommandError, match="malformed request"):
        parse_request(raw)


SCHEMA = Command(
    func=lambda a: a,
    args={
        "n": Arg(type="int", minimum=1, maximum=10),
        "x": Arg(type="float"),
        "s": Arg(type="str", choices=("a", "b")),
        "b": Arg(type="bool"),
        "r": Arg(type="int", required=False),
    },
)


def test_validate_args_converts_and_checks() -> None:
    assert validate_args("c", SCHEMA, {"n": 3, "x": 2, "s": "a", "b": True}) == {
        "n": 3,
        "x": 2.0,
        "s": "a",
        "b": True,
    }


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"n": True}, "must be int"),
        ({"n": 2.0}, "must be int"),
        ({"n": 0}, ">= 1"),
        ({"n": 11}, "<= 10"),
        ({"x": "1"}, "must be float"),
        ({"x": False}, "must be float"),
        ({"s": "c"}, "one of"),
        ({"b": 1}, "must be bool"),
        ({"zzz": 1}, "unknown argument"),
    ],
)
def test_validate_args_refuses(args: dict[str, object], match: str) -> None:
    with pytest.raises(CommandError, match=match):
        validate_args("c", SCHEMA, args)


def test_required_argument() -> None:
    spec = Command(func=lambda a: a, args={"n": Arg(type="int", required=True)})
    with pytest.raises(CommandError, match="missing required argument 'n'"):
        validate_args("c", spec, {})


def test_encode_decode_round_trip() -> None:
    assert decode_reply(encode({"ok": True, "time": 1.5})) == {"ok": True, "time": 1.5}
    with pytest.raises(ValueError, match="JSON"):
        encode({"x": float("nan")})
    with pytest.raises(ValueError, match="boolean 'ok'"):
        decode_reply(b'{"ok": 1}')


def _counting_server() -> tuple[DaemonServer, dict[str, int]]:
    state = {"n": 0}

    def incr(a: dict[str, int]) -> dict[str, int]:
        state["n"] += a.get("by", 1)
        return {"count": state["n"]}

    server = DaemonServer(
        "test",
        "fuzz",
        {"incr": Command(func=incr, args={"by": Arg(type="int", minimum=1, maximum=5)})},
        state=lambda: f"n={state['n']}",
    )
    return server, state


def test_handle_never_raises_on_bad_input() -> None:
    server, state = _counting_server()
    reply = server.handle(b'{"command": "incr", "args": {"by": "2"}}')
    assert reply["ok"] is False
    assert "must be int" in reply["error"]
    assert reply["state"] == "n=0"
    assert isinstance(reply["time"], float)
    assert state["n"] == 0
    assert server.handle(b'{"command": "incr", "args": {"by": 2}}')["count"] == 2


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200))
def test_fuzz_random_bytes_change_nothing(raw: bytes) -> None:
    server, state = _counting_server()
    reply = server.handle(raw)
    assert isinstance(reply["ok"], bool)
    if not reply["ok"]:
        assert reply["error"]
    json.dumps(reply, allow_nan=False)
    assert state["n"] == 0 or reply["ok"]


@settings(max_examples=300, deadline=None)
@given(
    command=st.sampled_from(["incr", "ping", "help", "nope", "INCR", ""]) | st.text(max_size=8),
    args=JSON,
)
def test_fuzz_random_json_requests(command: str, args: object) -> None:
    server, state = _counting_server()
    reply = server.handle(json.dumps({"command": command, "args": args}).encode())
    json.dumps(reply, allow_nan=False)
    if command != "incr" or not isinstance(args, dict) or not reply["ok"]:
        assert state["n"] == 0
    if reply["ok"] and command == "incr":
        assert isinstance(args, dict)
        assert state["n"] == args.get("by", 1)


@settings(max_examples=200, deadline=None)
@given(request=JSON)
def test_fuzz_random_json_documents(request: object) -> None:
    server, state = _counting_server()
    reply = server.handle(json.dumps(request).encode())
    if not reply["ok"]:
        assert state["n"] == 0


def test_builtin_names_are_reserved() -> None:
    with pytest.raises(ConfigError, match="built into"):
        DaemonServer("test", "x", {"ping": lambda a: a})
    with pytest.raises(ConfigError, match="callable"):
        DaemonServer("test", "x", {"bad": 3})  # type: ignore[dict-item]


def test_tcp_without_keys_is_refused() -> None:
    with pytest.raises(ConfigError, match="without CURVE keys"):
        DaemonServer("test", "x", {}, tcp="tcp://127.0.0.1:0")
