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
      - {method: ds_td3, algorithms: [td3]}  # only for these algorithms

A ``policy`` (any level; default ``MlpPolicy``) is a policy alias of the sparse algorithm
(``SimbaPolicy``, ``BroPolicy``); the ``dense`` method gets its dense counterpart from the registry
(:meth:`sb3_sparse.registry.AlgorithmEntry.dense_policy`: ``SimbaPolicy`` -> ``SimbaSACPolicy``).
``widths: [w, ...]`` (any level; ``width: w`` is ``widths: [w]``) runs every method entry once per width,
and the width sets ``policy_kwargs.net_arch`` (:func:`benchmarks.methods.width_net_arch`): an MLP gets
``{pi: [w, w], qf: [w, w]}``, a residual policy (SimBa, BRO) a critic of 2 blocks of width ``w`` and an
actor of 1 block of width ``max(1, w // 4)`` (SimBa's 1:4 actor:critic ratio). A method entry's
``width`` / ``widths`` replace the profile's (e.g. one dense model at a matched parameter budget)::

    policy: SimbaPolicy
    widths: [32, 64, 128]
    methods:
      - {method: dense, label: dense-mlp, policy: MlpPolicy}
      - {method: dense, label: dense-simba}
      - {method: mst}
      - {method: dense, label: dense-same-budget, width: 81}

The multi-agent learners ``qmix`` and ``vdn`` (:data:`sb3_sparse.registry.MULTI_AGENT_ALGORITHMS`) take env ids of
:func:`sb3_sparse.marl.envs.make_marl_env`, the methods ``dense``, ``tiny`` (MAST's dense baseline with the sparse
networks' active weight count at the entry's ``sparsity``, default 0.9) and the multi-agent recipes (``static``,
``set``, ``rigl``, ``rlx2``, ``mast``), and a ``policy`` of theirs (``RnnPolicy``: EPyMARL's GRU agents; the
default ``MlpPolicy`` is feed-forward); their ``algo_kwargs`` are QMIX's (``buffer_size`` and ``batch_size`` in
episodes)::

    policy: RnnPolicy
    algorithms: {qmix: {}}
    envs: [simple_spread_v3]
    methods: [dense, tiny, {method: mast, sparsity: 0.9}]

A run with a width has the label ``<label>-w<width>`` in its id: ``<algo>/<env>/<label>-w<width>/seed<k>``.

Runs are ordered seed first, then env, algorithm, method (in the profile's order) and width, so the
first seed of the first env finishes first.
"""

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
REPO_ROOT = Path(__file__).parent.parent
RUN_SETTINGS = ("total_timesteps", "eval_freq", "n_eval_episodes", "checkpoint_freq", "final_evals")
#: Settings that cascade like the run settings but are not integers.
MODEL_SETTINGS = ("policy", "widths", "width")
DEFAULT_POLICY = "MlpPolicy"
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
    policy: str = DEFAULT_POLICY
    width: int | None = None

    @property
    def run_label(self) -> str:
        """The label with the width, if any: ``<label>-w<width>``."""
        return run_label(self.label, self.width)

    @property
    def run_id(self) -> str:
        """Directory name of the run: ``<algo>/<env>/<label>[-w<width>]/seed<k>``."""
        return f"{self.algo}/{self.env_id}/{self.run_label}/seed{self.seed}"

    @property
    def task(self) -> str:
        return f"{self.algo.upper()} {self.env_id}"

    def to_dict(self) -> dict[str, Any]:
        """The spec as a dict; ``policy`` and ``width`` only when set (results of older specs stay valid)."""
        data = asdict(self)
        if data["policy"] == DEFAULT_POLICY:
            del data["policy"]
        if data["width"] is None:
            del data["width"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        return cls(**data)


def run_label(label: str, width: int | None) -> str:
    """``label`` with the width appended (``dense-w64``), or ``label`` when there is no width."""
    return label if width is None else f"{label}-w{width}"


def _widths(settings: dict[str, Any]) -> list[int | None]:
    """The widths of a method entry's merged settings (``width`` wins over ``widths``); ``[None]``: no width."""
    if settings.get("width") is not None:
        return [int(settings["width"])]
    widths = settings.get("widths")
    if widths is None:
        return [None]
    if not isinstance(widths, list) or not widths or any(int(w) <= 0 for w in widths):
        raise ValueError(f"widths must be a non-empty list of positive integers, got {widths!r}")
    return [int(w) for w in widths]


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
    top.update({key: data[key] for key in MODEL_SETTINGS if key in data})
    algorithms = _entries(data["algorithms"], "algorithms")
    envs = _entries(data["envs"], "envs")
    methods: list[dict[str, Any]] = [{"method": m} if isinstance(m, str) else dict(m) for m in data["methods"]]
    labels = [method_label(m) for m in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"method labels must be unique, got {labels}; give entries a 'label'")
    from benchmarks.methods import check_method, is_multi_agent, registry_name
    from sb3_sparse.registry import ALGORITHMS, MULTI_AGENT_ALGORITHMS

    for algo in algorithms:
        if registry_name(algo) not in ALGORITHMS and not is_multi_agent(algo):
            valid = ", ".join([name.removeprefix("sparse_") for name in ALGORITHMS] + list(MULTI_AGENT_ALGORITHMS))
            raise ValueError(f"algorithm {algo!r} is not valid; choose one of {valid}")
        for entry in methods:
            if algo in entry.get("algorithms", [algo]):
                check_method(algo, str(entry["method"]))
    specs = []
    for seed in data["seeds"]:
        for env_id, env_options in envs.items():
            for algo, algo_options in algorithms.items():
                if "envs" in algo_options and env_id not in algo_options["envs"]:
                    continue  # the algorithm's own env list (e.g. DQN: discrete actions only)
                run_labels: set[str] = set()
                for entry, label in zip(methods, labels, strict=True):
                    if algo not in entry.get("algorithms", [algo]):
                        continue  # the method's own algorithm list (e.g. DS-SAC: SAC only)
                    settings = _merge(_merge(top, algo_options), env_options)
                    own = {k: v for k, v in entry.items() if k in (*RUN_SETTINGS, *MODEL_SETTINGS, "algo_kwargs")}
                    if "width" in own or "widths" in own:  # the entry's width(s) replace the profile's
                        settings.pop("width", None)
                        settings.pop("widths", None)
                    settings = _merge(settings, own)
                    for width in _widths(settings):
                        if run_label(label, width) in run_labels:
                            raise ValueError(f"run label {run_label(label, width)!r} appears twice; give entries a 'label'")
                        run_labels.add(run_label(label, width))
                        specs.append(
                            RunSpec(
                                profile=profile_name,
                                algo=algo,
                                env_id=env_id,
                                label=label,
                                method=str(entry["method"]),
                                seed=int(seed),
                                sparsity=entry.get("sparsity"),
                                algo_kwargs=copy.deepcopy(settings["algo_kwargs"]),
                                method_kwargs=dict(entry.get("kwargs") or {}),
                                policy=str(settings.get("policy", DEFAULT_POLICY)),
                                width=width,
                                **{key: int(settings[key]) for key in RUN_SETTINGS},
                            )
                        )
    return specs


def profile_results_dir(data: dict[str, Any], name: str) -> Path:
    """Where a profile's runs go: its ``results`` entry (a folder relative to the repository root, for a profile whose
    finished runs are committed as they finish), else ``benchmarks/results/<name>`` (not committed)."""
    return REPO_ROOT / data["results"] if data.get("results") else REPO_ROOT / "benchmarks" / "results" / name


def load_profile(name_or_path: str) -> tuple[dict[str, Any], list[RunSpec]]:
    """Load a profile by name (``benchmarks/profiles/<name>.yaml``) or path; return its data and run specs."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    with open(path) as file:
        data = yaml.safe_load(file)
    name = str(data.get("name", path.stem))
    return data, parse_profile(data, name)
