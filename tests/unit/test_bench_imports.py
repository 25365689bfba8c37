"""Every benchmark `make bench`, `make soak` and `make screenshots` can run still imports:
they run outside `make test`, so a renamed helper would otherwise surface only there."""

import importlib

import pytest

from bench.__main__ import BENCHES


@pytest.mark.parametrize("name", sorted(BENCHES))
def test_the_bench_imports(name):
    assert callable(importlib.import_module(BENCHES[name]).main)
