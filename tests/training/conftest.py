"""The training tests' small real-data set (tests/conftest.py's data_dir, a subset of it)."""
import pytest

from helpers import small_training_data


@pytest.fixture(scope="module")
def data(data_dir):
    return small_training_data(data_dir)
