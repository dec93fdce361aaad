import os

import torch as th

#: Torch's default device for the tests when set (``cuda`` on a GPU machine: ``benchmarks/gpu.py``); CPU otherwise.
DEVICE_VARIABLE = "SB3_SPARSE_TEST_DEVICE"


def pytest_configure(config):
    # One thread per test process: the suite runs in parallel (pytest -n 2) on 2 cores.
    th.set_num_threads(1)
    if os.environ.get(DEVICE_VARIABLE):
        th.set_default_device(os.environ[DEVICE_VARIABLE])


def pytest_report_header(config):
    return f"torch default device: {th.get_default_device()}"
