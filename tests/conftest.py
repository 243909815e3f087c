"""Shared fixtures. `dist_base`: the 2-rank cpt base the dist tests (tests/test_dist*.py) start from,
built once per session on two ranks itself."""

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def dist_base(tmp_path_factory):
    from dist_helpers import CPT, launch

    run_dir = tmp_path_factory.mktemp("dist")
    result = launch("cpt", *CPT, "--run_dir", str(run_dir))
    assert result.returncode == 0, result.log[-3000:]
    return SimpleNamespace(run_dir=run_dir, cpt=result)
