"""Benchmark profiles: a YAML file declaring a matrix of training runs.

A profile lists ``algorithms``, ``envs``, ``methods`` and ``seeds``; every combination is one
:class:`RunSpec`. Settings cascade: profile top level, then the algorithm's entry, then the env's
entry, then the method's entry (``algo_kwargs`` are merged, other keys replaced)::

    name: smoke
    total_timesteps: 1000        # env steps per run
    eval_freq: 250               # deterministic evaluation every ... env steps (and at step 0)
    n_eval_episodes: 5
    checkpoint_freq: 500         # resumable checkpoint every ... env steps
    final_evals: 1               # evaluations averaged into the final return
    algo_kwargs: {learning_starts: 100}
    algorithms: {sac: {}, td3: {algo_kwargs: {action_noise_std: 0.1}}, dqn: {envs: [CartPole-v1]}}
    envs: {Pendulum-v1: {}, InvertedPendulum-v5: {total_timesteps: 2000}}
    seeds: [0, 1]
    methods:
      - dense
      - {method: set, sparsity: 0.5}
      - {method: rigl, sparsity: 0.9, kwargs: {sparsity_distribution: erk}}
      - {method: gmp, label: gmp-90}         # any sb3_sparse.sparse_recipe name

Runs are ordered seed first, then env, algorithm and method (in the profile's order), so the
first seed of the first env finishes first.
"""

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
RUN_SETTINGS = ("total_timesteps", "eval_freq", "n_eval_episodes", "checkpoint_freq", "final_evals")
DEFAULTS: dict[str, Any] = {
    "total_timesteps": 100_000,
    "eval_freq": 5000,
    "n_eval_episodes": 10,
    "checkpoint_freq": 25_000,
    "final_evals": 5,
}


@dataclass(frozen=True)
class RunSpec:
    """One training run of a profile."""

    profile: str
    algo: str
    env_id: str
    label: str
    method: str
    seed: int
    sparsity: float | None = None
    total_timesteps: int = 100_000
    eval_freq: int = 5000
    n_eval_episodes: int = 10
    checkpoint_freq: int = 25_000
    final_evals: int = 5
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    method_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """Directory name of the run: ``<algo>/<env>/<label>/seed<k>``."""
        return f"{self.algo}/{self.env_id}/{self.label}/seed{self.seed}"

    @property
    def task(self) -> str:
        return f"{self.algo.upper()} {self.env_id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        return cls(**data)


def _entries(value: Any, what: str) -> dict[str, dict[str, Any]]:
    """``[a, b]`` or ``{a: {...}, b: {...}}`` -> ``{a: {...}, b: {...}}``."""
    if isinstance(value, list):
        return {str(name): {} for name in value}
    if isinstance(value, dict):
        return {str(name): dict(options or {}) for name, options in value.items()}
    raise ValueError(f"profile key {what!r} must be a list or a mapping, got {type(value).__name__}")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key == "algo_kwargs":
            merged["algo_kwargs"] = {**merged.get("algo_kwargs", {}), **value}
        else:
            merged[key] = value
    return merged


def method_label(entry: dict[str, Any]) -> str:
    """A method entry's label: ``label``, else ``dense`` or ``<method>-<sparsity>``."""
    if "label" in entry:
        return str(entry["label"])
    if entry["method"] == "dense" or entry.get("sparsity") is None:
        return str(entry["method"])
    return f"{entry['method']}-{entry['sparsity']:g}"


def parse_profile(data: dict[str, Any], name: str | None = None) -> list[RunSpec]:
    """The run specs declared by a profile (already loaded from YAML), in priority order."""
    for key in ("algorithms", "envs", "methods", "seeds"):
        if key not in data:
            raise ValueError(f"profile is missing {key!r}")
    profile_name = name or str(data.get("name", "profile"))
    top = {key: data.get(key, DEFAULTS[key]) for key in RUN_SETTINGS}
    top["algo_kwargs"] = dict(data.get("algo_kwargs") or {})
    algorithms = _entries(data["algorithms"], "algorithms")
    envs = _entries(data["envs"], "envs")
    methods = [{"method": m} if isinstance(m, str) else dict(m) for m in data["methods"]]
    labels = [method_label(m) for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"method labels must be unique, got {labels}; give entries a 'label'")
    from benchmarks.methods import registry_name
    from sb3_sparse.common.recipes import RECIPES
    from sb3_sparse.registry import ALGORITHMS

    for algo in algorithms:
        if registry_name(algo) not in ALGORITHMS:
            valid = ", ".join(name.removeprefix("sparse_") for name in ALGORITHMS)
            raise ValueError(f"algorithm {algo!r} is not valid; choose one of {valid}")
    for entry in methods:
        if entry["method"] != "dense" and entry["method"] not in RECIPES:
            raise ValueError(f"method {entry['method']!r} is not valid; choose 'dense' or a recipe: {', '.join(RECIPES)}")
    specs = []
    for seed in data["seeds"]:
        for env_id, env_options in envs.items():
            for algo, algo_options in algorithms.items():
                if "envs" in algo_options and env_id not in algo_options["envs"]:
                    continue  # the algorithm's own env list (e.g. DQN: discrete actions only)
                for entry, label in zip(methods, labels, strict=True):
                    settings = _merge(_merge(top, algo_options), env_options)
                    settings = _merge(settings, {k: v for k, v in entry.items() if k in (*RUN_SETTINGS, "algo_kwargs")})
                    specs.append(
                        RunSpec(
                            profile=profile_name,
                            algo=algo,
                            env_id=env_id,
                            label=label,
                            method=str(entry["method"]),
                            seed=int(seed),
                            sparsity=entry.get("sparsity"),
                            algo_kwargs=settings.pop("algo_kwargs"),
                            method_kwargs=dict(entry.get("kwargs") or {}),
                            **{key: int(settings[key]) for key in RUN_SETTINGS},
                        )
                    )
    return specs


def load_profile(name_or_path: str) -> tuple[dict[str, Any], list[RunSpec]]:
    """Load a profile by name (``benchmarks/profiles/<name>.yaml``) or path; return its data and run specs."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    with open(path) as file:
        data = yaml.safe_load(file)
    name = str(data.get("name", path.stem))
    return data, parse_profile(data, name)
