import torch as th


def pytest_configure(config):
    # One thread per test process: the suite runs in parallel (pytest -n 2) on 2 cores.
    th.set_num_threads(1)
