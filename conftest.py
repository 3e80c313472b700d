"""Doctests in convlab/ see ``torch`` as the numpydoc examples assume."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _doctest_torch(doctest_namespace):
    doctest_namespace["torch"] = torch
