"""The package root: lazy re-exports of what notebooks use, and no torch behind ``synth``."""

import subprocess
import sys

import pytest

import eva_depthmask


def test_every_exported_name_resolves_and_is_listed():
    for name in eva_depthmask.__all__:
        value = getattr(eva_depthmask, name)
        assert value is not None, name
        assert name in dir(eva_depthmask)
    assert eva_depthmask.fit.__module__ == "eva_depthmask.training.fit"
    assert eva_depthmask.Predictor.__module__ == "eva_depthmask.evaluation.predictor"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        eva_depthmask.no_such_name  # noqa: B018


def test_the_root_and_synth_import_without_torch_or_matplotlib():
    code = (
        "import sys, eva_depthmask, eva_depthmask.synth.scenes, eva_depthmask.config;"
        "print(sorted({'torch', 'matplotlib'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
