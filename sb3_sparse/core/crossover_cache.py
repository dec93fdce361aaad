"""The crossover points of the machine it runs on: the per-machine cache that ``backend="auto"`` reads.

``sb3-sparse calibrate`` (:mod:`sb3_sparse.core.calibration`) measures where CSR products beat masked ones on this
CPU, and where condensed products beat both, and writes them, as JSON, to a cache file keyed by the CPU model, the
torch version and torch's thread count (:func:`machine_key`): ``$XDG_CACHE_HOME/sb3-sparse/crossover-<key>.json``
(``~/.cache/sb3-sparse/`` without ``XDG_CACHE_HOME``). Where that file exists, ``"auto"`` uses its points on the
CPU; elsewhere (nothing calibrated, another thread count, a GPU) it keeps the built-in tables
:data:`sb3_sparse.core.backends.CROSSOVER` and :data:`~sb3_sparse.core.backends.CONDENSED_CROSSOVER`. Nothing is
calibrated behind the user's back: measuring takes a minute or two of a busy CPU, which a training run should not
spend unasked.

The environment variable ``SB3_SPARSE_CROSSOVER`` (or :func:`use_calibration`) names another file, or
``builtin`` to ignore calibrations. A file that cannot be read, or that was measured on another machine
(CPU, torch or thread count), is ignored with a warning.
"""

import functools
import hashlib
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import torch as th

#: Environment variable naming the calibration file that ``"auto"`` reads, or ``builtin`` to read none.
CACHE_VARIABLE = "SB3_SPARSE_CROSSOVER"

#: The value of :data:`CACHE_VARIABLE` (and of :func:`use_calibration`) that keeps the built-in table.
BUILTIN = "builtin"

#: ``mode -> {batch at least: [(width at least, highest density at which CSR is faster), ...]}``, the layout of
#: :data:`sb3_sparse.core.backends.CROSSOVER`'s entry of one device.
Table = dict[str, dict[int, list[tuple[int, float]]]]

FORMAT = 1

#: The tables of a calibration file (the first, CSR's, under the key ``crossover``)
KINDS = ("csr", "condensed", "condensed_lowest")

_override: str | None = None
# file -> ((its inode, mtime, size and the machine key it was read under), its tables or None when ignored)
_memo: dict[Path, tuple[tuple[Any, ...], dict[str, Table] | None]] = {}


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_key() -> dict[str, Any]:
    """What the crossover points depend on: the CPU model, the torch version and torch's thread count now."""
    return {"cpu": cpu_model(), "torch": th.__version__, "threads": th.get_num_threads()}


def default_cache_file(key: dict[str, Any] | None = None) -> Path:
    """This machine's calibration file: ``$XDG_CACHE_HOME/sb3-sparse/crossover-<hash of the key>.json``."""
    key = machine_key() if key is None else key
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "sb3-sparse" / f"crossover-{digest}.json"


def use_calibration(source: str | os.PathLike[str] | None) -> None:
    """Which calibration ``"auto"`` reads from now on, in this process (overrides :data:`CACHE_VARIABLE`).

    :param source: a calibration file, ``"builtin"`` for the built-in table, or ``None`` for the default
        (:data:`CACHE_VARIABLE` if set, else :func:`default_cache_file`)
    """
    global _override
    _override = None if source is None else os.fspath(source)


def cache_file() -> Path | None:
    """The calibration file that ``"auto"`` reads now (``None``: the built-in table, by request)."""
    source = _override if _override is not None else os.environ.get(CACHE_VARIABLE, "").strip()
    if source == BUILTIN:
        return None
    return Path(source).expanduser() if source else default_cache_file()


def save_calibration(
    table: Table,
    path: str | os.PathLike[str] | None = None,
    condensed: tuple[Table, Table] | None = None,
    **details: Any,
) -> Path:
    """Write ``table`` (with :func:`machine_key` and ``details``) as this machine's calibration; return the file.

    :param table: where CSR products are faster (highest densities)
    :param path: where to write (default: :func:`cache_file`, or :func:`default_cache_file` when that is
        ``"builtin"``)
    :param condensed: where condensed products are faster: the tables of the highest and of the lowest densities
        (``None``: the built-in points)
    """
    file = Path(path) if path is not None else cache_file() or default_cache_file()
    data = {
        "format": FORMAT,
        "key": machine_key(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "crossover": json_table(table),
        **({} if condensed is None else {kind: json_table(part) for kind, part in zip(KINDS[1:], condensed, strict=True)}),
        **details,
    }
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(file.name + ".tmp")
    partial.write_text(json.dumps(data, indent=1))
    partial.replace(file)  # readers never see half a file
    return file


def json_table(table: Table) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """``table`` as JSON holds it (batches as strings)."""
    return {mode: {str(batch): sizes for batch, sizes in batches.items()} for mode, batches in table.items()}


def clear_calibration() -> Path | None:
    """Delete the calibration file that ``"auto"`` reads (back to the built-in table); return it if it existed."""
    file = cache_file()
    if file is None or not file.exists():
        return None
    file.unlink()
    return file


def calibrated_crossover(kind: str = "csr") -> Table | None:
    """A crossover table of the calibration file that ``"auto"`` reads, or ``None`` (use the built-in one).

    Read once per file version; a file that cannot be read or was measured on another machine gives one warning.

    :param kind: one of :data:`KINDS`: ``"csr"`` (the highest densities at which CSR products are faster than
        masked ones), ``"condensed"`` and ``"condensed_lowest"`` (the highest and the lowest densities at which
        condensed products are faster than both; ``None`` for a file calibrated without them)
    """
    tables = _calibrated_tables()
    return None if tables is None else tables.get(kind)


def _calibrated_tables() -> dict[str, Table] | None:
    file = cache_file()
    if file is None:
        return None
    key = machine_key()
    try:
        stat = file.stat()
    except OSError:
        return None  # nothing calibrated
    stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size, tuple(sorted(key.items())))
    memo = _memo.get(file)
    if memo is not None and memo[0] == stamp:
        return memo[1]
    tables: dict[str, Table] | None = None
    try:
        data = json.loads(file.read_text())
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a calibration of format {FORMAT}")
        if data.get("key") != key:
            warnings.warn(
                f"{file} was calibrated on another machine ({data.get('key')}), this one is {key}: "
                f"backend='auto' uses the built-in crossover table (run 'sb3-sparse calibrate')",
                stacklevel=2,
            )
        else:
            tables = {"csr": parse_table(data.get("crossover"))}
            tables.update({kind: parse_table(data[kind]) for kind in KINDS[1:] if kind in data})
    except (OSError, ValueError, TypeError) as error:  # json's errors are ValueErrors
        warnings.warn(f"{file} is ignored ({error}): backend='auto' uses the built-in crossover table", stacklevel=2)
    _memo[file] = (stamp, tables)
    return tables


def parse_table(entries: Any) -> Table:
    """A :data:`Table` from its JSON form (batches as strings, pairs as lists); ``ValueError`` if it is not one."""
    if not isinstance(entries, dict):
        raise ValueError("no crossover table")
    table: Table = {}
    for mode, batches in entries.items():
        if not isinstance(batches, dict):
            raise ValueError(f"mode {mode!r} holds no batches")
        table[mode] = {}
        for batch, sizes in batches.items():
            pairs = [(int(width), float(density)) for width, density in sizes]
            if not pairs or [width for width, _ in pairs] != sorted({width for width, _ in pairs}):
                raise ValueError(f"the widths of {mode!r} batch {batch} are not increasing")
            if not all(0.0 <= density <= 1.0 for _, density in pairs):
                raise ValueError(f"a density of {mode!r} batch {batch} is outside [0, 1]")
            table[mode][int(batch)] = pairs
    return table
