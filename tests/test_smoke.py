import sb3_sparse


def test_version():
    assert sb3_sparse.__version__
