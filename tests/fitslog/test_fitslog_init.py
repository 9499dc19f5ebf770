"""vampires.fitslog re-exports its public names, imported on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import vampires.fitslog


def test_public_names_import_from_the_package() -> None:
    from vampires.fitslog import (  # noqa: F401 - the import is the test
        CubePolicy,
        Logger,
        LoggerGroup,
        open_partial,
        recover_folder,
        recover_tmp,
    )


@pytest.mark.parametrize("name", vampires.fitslog.__all__)
def test_each_name_is_the_one_of_its_module(name: str) -> None:
    module = importlib.import_module(vampires.fitslog._LAZY[name])
    assert getattr(vampires.fitslog, name) is getattr(module, name)
    assert name in getattr(module, "__all__", ())


def test_all_is_what_dir_shows_and_unknown_names_fail() -> None:
    assert set(vampires.fitslog.__all__) == set(vampires.fitslog._LAZY)
    assert dir(vampires.fitslog) == sorted(vampires.fitslog.__all__)
    with pytest.raises(AttributeError, match="nope"):
        _ = vampires.fitslog.nope


def test_importing_the_package_pulls_no_numba_nor_astropy() -> None:
    code = "import sys, vampires.fitslog\nprint('numba' in sys.modules, 'astropy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
