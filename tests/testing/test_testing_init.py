"""vampires.testing re-exports its public names, imported on first use."""

from __future__ import annotations

import importlib

import pytest

import vampires.testing


@pytest.mark.parametrize("name", vampires.testing.__all__)
def test_each_name_is_the_one_of_its_module(name: str) -> None:
    module = importlib.import_module(vampires.testing._LAZY[name])
    assert getattr(vampires.testing, name) is getattr(module, name)
    assert name in getattr(module, "__all__", ())


def test_all_is_what_dir_shows_and_unknown_names_fail() -> None:
    assert set(vampires.testing.__all__) == set(vampires.testing._LAZY)
    assert dir(vampires.testing) == sorted(vampires.testing.__all__)
    with pytest.raises(AttributeError, match="nope"):
        _ = vampires.testing.nope


def test_backend_suite_imports_from_the_package() -> None:
    from vampires.testing import BackendTests
    from vampires.testing.backend import BackendTests as FromModule

    assert BackendTests is FromModule
