import os

from setuptools import find_packages, setup

with open(os.path.join("sb3_sparse", "version.txt")) as file_handler:
    __version__ = file_handler.read().strip()

with open("README.md", encoding="utf-8") as file_handler:
    long_description = file_handler.read()

setup(
    name="sb3-sparse",
    version=__version__,
    description="Dynamic sparse training (SET, RigL, static sparse) for Stable-Baselines3 SAC and TD3",
    long_description=long_description,
    long_description_content_type="text/markdown",
    packages=[package for package in find_packages() if package.startswith("sb3_sparse")],
    package_data={
        "sb3_sparse": [
            "py.typed",
            "version.txt",
            "hyperparams/*.yml",
            # the trained agents of `sb3-sparse agents` / `sb3-sparse enjoy --pretrained`
            "trained_agents/index.yml",
            "trained_agents/*.pt",
        ]
    },
    python_requires=">=3.10",
    install_requires=[
        "stable-baselines3>=2.4,<3.0",
        "sb3-contrib>=2.4,<3.0",
        "torch>=2.3,<3.0",
        "gymnasium[mujoco]>=1.0,<2.0",
        "numpy>=1.24",
        "tqdm",
        "rich",
    ],
    extras_require={
        "tests": [
            "pytest>=7.0",
            "pytest-xdist",
            "hypothesis>=6.0",
            "ruff>=0.5",
            "mypy>=1.10",
            "tensorboard>=2.9",
            # ONNX export of sparse policies (tests/test_deploy.py, docs/common/deploy.rst)
            "onnx",
            "onnxruntime",
        ],
        "docs": [
            "sphinx>=7.0",
            "sphinx-rtd-theme>=2.0",
            "myst-parser>=2.0",
        ],
        # benchmarks/ (python -m benchmarks.run, benchmarks/throughput.py): profiles and plots
        "bench": [
            "pyyaml>=6.0",
            "matplotlib",
            "box2d>=2.3.10",  # LunarLander-v3 (the mast profile)
        ],
        # python -m benchmarks.run PROFILE --ray: the run matrix on a Ray cluster (benchmarks/ray_runner.py)
        "ray": ["ray>=2.40"],
        # rl-zoo3 integration (sb3-sparse train/enjoy/tune/plot): rl-zoo3 plus what it imports at run time
        # without installing it (plots: matplotlib, pandas, seaborn, scipy; record-video: moviepy, and
        # pygame to render classic-control envs), and the PostgreSQL driver for studies shared by many machines.
        "zoo": [
            "rl_zoo3>=2.4,<3.0",
            "optuna>=3.0",
            "pyyaml>=6.0",
            "matplotlib",
            "pandas",
            "seaborn",
            "scipy",
            "moviepy",
            "gymnasium[classic-control]",
            "psycopg2-binary",
        ],
        # DeepMind Control Suite tasks as dmc/<domain>-<task>-v0 (sb3_sparse.common.envs), through shimmy.
        # dm_control 1.0.50 is built for MuJoCo 3.17: MuJoCo 4 removed model fields it reads, so MuJoCo stays
        # below 4 (gymnasium's MuJoCo v5 envs run on it too).
        "dmc": [
            "dm_control>=1.0.50",
            "mujoco>=3.17,<4",
            "shimmy[dm-control]>=2.0,<3",
        ],
        # Reference implementations that tests/test_oracles.py checks the DST machinery against. sparsimony 0.1.0
        # (SET, RigL, ERK) is installed apart, with `pip install --no-deps sparsimony==0.1.0`: its metadata pins
        # numpy==1.* (it runs on numpy 2, and its only other dependency is torch), which would downgrade numpy.
        # rigl-torch imports torchvision but declares no dependency on it; the tests do without it (PyPI's
        # torchvision wheels need the CUDA build of torch).
        "oracle": [
            "rigl-torch==0.5.2",
        ],
        # Multi-agent tasks of sb3_sparse.marl (QMIX / VDN): PettingZoo's parallel API, level-based foraging,
        # multi-robot warehouse and MPE
        "marl": [
            "pettingzoo>=1.24",
            "lbforaging>=2.0",
            "rware>=2.0",
            "mpe2>=1.0",
        ],
    },
    entry_points={"console_scripts": ["sb3-sparse=sb3_sparse.zoo.cli:main"]},
    license="MIT",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
