"""The benchmarks' report: one row type, ratios, percentiles, tables, notes, JSON results.

Every benchmark (layers, worker, http, websocket, idle, the whole suite) turns
what it measured into :class:`Row` objects, compares them with
:func:`add_ratios`, prints them with :func:`table` and writes them with
:func:`record`. A row is typed where every benchmark agrees (who, what, the
headline figure, latency, correctness, an error) and carries the rest of a
scenario's figures in :attr:`Row.figures`, which go into the JSON as they are.

Standard library only: the anchor scripts build their rows with it inside the
anchor virtualenvs and print them as JSON; :meth:`Row.from_json` reads them back.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

#: The typed fields of a row, in the order they open its JSON object.
_FIELDS = ("scenario", "impl", "label", "kind", "rate", "unit", "p50_ms", "p99_ms")


@dataclass
class Row:
    """One implementation's result in one scenario."""

    scenario: str
    #: Who was measured, e.g. ``ours-redis-sync``, ``anchor``, ``classic``, ``floor``.
    impl: str
    #: How the table names it, e.g. ``channels 4.3.1: daphne + Django ASGI app``.
    label: str
    #: The headline figure (higher is better unless :attr:`unit` says otherwise).
    rate: float | None
    unit: str
    #: ``ours``, ``anchor`` or ``floor``, where a benchmark sorts by it.
    kind: str = ""
    p50_ms: float | None = None
    p99_ms: float | None = None
    #: Whether every message arrived once and right; None where nothing was checked.
    correct: bool | None = None
    #: Why the scenario failed on this implementation (the figures are then missing).
    error: str | None = None
    #: Everything else the scenario measured, by name, JSON-ready.
    figures: dict[str, Any] = field(default_factory=dict)
    #: This row's figures relative to other rows', by name (see :func:`add_ratios`).
    ratios: dict[str, float | None] = field(default_factory=dict)

    @classmethod
    def failed(
        cls, scenario: str, impl: str, label: str, unit: str, error: BaseException, **figures: Any
    ) -> Row:
        """A row for a scenario that raised *error* on this implementation."""
        return cls(scenario, impl, label, None, unit, error=repr(error), figures=figures)

    def add_latency(self, samples: Sequence[float]) -> Row:
        """Set p50/p99 (and p90, max, the sample count) from *samples* in seconds."""
        summary = latency_summary(samples)
        self.p50_ms = summary.pop("p50_ms")
        self.p99_ms = summary.pop("p99_ms")
        self.figures.update(summary)
        return self

    def to_json(self, nest_ratios: str | None = None) -> dict[str, Any]:
        """The row as a JSON object: typed fields, figures, then ratios.

        Ratios are top-level keys (``vs_anchor``), or under *nest_ratios*.
        """
        data: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        if not self.kind:
            del data["kind"]
        if self.correct is not None:
            data["correct"] = self.correct
        if self.error is not None:
            data["error"] = self.error
        data.update(self.figures)
        if nest_ratios:
            data[nest_ratios] = dict(self.ratios)
        else:
            data.update(self.ratios)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        """Read back a row an anchor script printed with :meth:`to_json`."""
        rest = dict(data)
        typed = {name: rest.pop(name, None) for name in (*_FIELDS, "correct", "error")}
        return cls(
            scenario=typed["scenario"],
            impl=typed["impl"],
            label=typed["label"],
            rate=typed["rate"],
            unit=typed["unit"],
            kind=typed["kind"] or "",
            p50_ms=typed["p50_ms"],
            p99_ms=typed["p99_ms"],
            correct=typed["correct"],
            error=typed["error"],
            figures=rest,
        )


def rows_json(rows: Iterable[Row], nest_ratios: str | None = None) -> list[dict[str, Any]]:
    """Every row as JSON (see :meth:`Row.to_json`)."""
    return [row.to_json(nest_ratios) for row in rows]


# Ratios and statistics -------------------------------------------------------------


def ratio(value: float | None, reference: float | None) -> float | None:
    """Return ``value / reference``, or None if either is missing or zero."""
    if not value or not reference:
        return None
    return value / reference


def add_ratios(
    rows: Sequence[Row],
    name: str,
    against: Callable[[Row], str | None],
    value: Callable[[Row], float | None] = lambda row: row.rate,
) -> None:
    """Set ``row.ratios[name]``: *value* of the row over that of the same scenario's reference.

    ``against(row)`` names the reference's ``impl`` (None: no reference for
    this row, the ratio is None). Failed rows have no figure, so no ratio.
    """
    by_impl = {(row.scenario, row.impl): row for row in rows}
    for row in rows:
        reference_impl = against(row)
        reference = by_impl.get((row.scenario, reference_impl)) if reference_impl else None
        row.ratios[name] = None if reference is None else ratio(value(row), value(reference))


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile (*fraction* in 0..1) of *samples*, or None."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def latency_summary(samples: Sequence[float]) -> dict[str, Any]:
    """Sample count and p50 / p90 / p99 / max in milliseconds of *samples* (seconds)."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(1000 * value, 4)

    return {
        "samples": len(samples),
        "p50_ms": ms(percentile(samples, 0.50)),
        "p90_ms": ms(percentile(samples, 0.90)),
        "p99_ms": ms(percentile(samples, 0.99)),
        "max_ms": ms(max(samples) if samples else None),
    }


def share(part: float | None, whole: float | None) -> float | None:
    """*part* / *whole* rounded for the JSON (a CPU share), or None."""
    return None if part is None or not whole else round(part / whole, 4)


# Cells and tables ------------------------------------------------------------------


def fmt_number(value: float | None, digits: int = 0) -> str:
    """Format *value* with thousands separators; '-' for None."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    """Format a ratio as ``0.52x``; '-' for None."""
    return "-" if value is None else f"{value:.2f}x"


def fmt_percent(value: float | None) -> str:
    """Format a share (0.5) as ``50%``; '-' for None."""
    return "-" if value is None else f"{100 * value:.0f}%"


def fmt_ok(row: Row) -> str:
    """``yes``, or ``NO`` for a row that failed its check or failed outright."""
    return "NO" if row.correct is False or row.error else "yes"


@dataclass(frozen=True)
class Column:
    """One column of a table: its header and how a row fills it."""

    header: str
    cell: Callable[[Row], object]


def ratio_column(header: str, name: str) -> Column:
    """A column showing ``row.ratios[name]``."""
    return Column(header, lambda row: fmt_ratio(row.ratios.get(name)))


def share_column(name: str) -> Column:
    """A CPU share figure (``server_cpu_share``) as a percentage, headed ``server CPU``."""
    header = name.removesuffix("_cpu_share") + " CPU"
    return Column(header, lambda row: fmt_percent(row.figures.get(name)))


def figure_column(header: str = "figure", digits: int = 0) -> Column:
    """The headline figure, or ``FAILED``."""
    return Column(header, lambda row: "FAILED" if row.error else fmt_number(row.rate, digits))


def table(
    rows: Iterable[Row], columns: Sequence[Column], key: Callable[[Row], Any] | None = None
) -> str:
    """Format *rows* (sorted by *key*, if given) as a plain-text table of *columns*."""
    ordered = sorted(rows, key=key) if key else list(rows)
    return format_table(
        [column.header for column in columns],
        [[column.cell(row) for column in columns] for row in ordered],
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return a plain-text table; cells are ``str()``-ed, text left, numbers right."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    numeric = [
        all(_looks_numeric(row[index]) for row in cells if row[index] not in ("", "-"))
        for index in range(len(widths))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(list(headers)), rule, *(line(row) for row in cells)])


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("x", "").replace("%", "").replace("-", "")
    return stripped.replace(".", "", 1).strip().isdigit()


# Notes under the tables --------------------------------------------------------------


def server_cpu_note(row: Row) -> str:
    """``daphne 1.2 s, runworker-1 0.8 s``: the servers' CPU seconds of one row."""
    seconds = row.figures.get("server_cpu_seconds") or {}
    return ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())


def log_problem_notes(rows: Iterable[Row]) -> list[str]:
    """One line per server process whose output looked like errors, with a sample."""
    notes: dict[str, str] = {}
    for row in rows:
        for name, found in (row.figures.get("server_log_problems") or {}).items():
            sample = found["samples"][0][:140]
            notes[f"{row.label}/{name}"] = f"  {name}: {found['lines']} lines, e.g. {sample}"
    return list(notes.values()) or ["  none"]


def failure_notes(rows: Iterable[Row]) -> list[str]:
    """One line per failed row."""
    return [f"  {row.label}: {row.scenario} FAILED: {row.error}" for row in rows if row.error]


def cpu_line(client_cpu: float, anchor_cpu: float | None, wall: float) -> str:
    """The closing line of a report: this process's CPU time, the anchor's, the wall time."""
    anchor = f" + {anchor_cpu:.1f} s (anchor process)" if anchor_cpu is not None else ""
    return f"Client CPU time: {client_cpu:.1f} s (this process){anchor}; wall time {wall:.1f} s"


# JSON results ------------------------------------------------------------------------


def package_versions(names: Sequence[str]) -> dict[str, str | None]:
    """Return the installed version of each distribution in *names* (None if absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info(packages: Sequence[str] = ()) -> dict[str, Any]:
    """Describe this machine and interpreter, plus the versions of *packages*."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(packages),
    }


def write_json(name: str, data: Mapping[str, Any]) -> Path:
    """Write *data* to ``benchmarks/results/<name>.json``; return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return path


def record(
    name: str,
    *,
    settings: Mapping[str, Any],
    packages: Sequence[str],
    redis_version: str,
    machine: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Write one benchmark's figures to ``benchmarks/results/<name>.json`` and say so."""
    path = write_json(
        name,
        {
            "benchmark": name,
            "settings": dict(settings),
            "machine": {**machine_info(packages), "redis_server": redis_version, **(machine or {})},
            **extra,
        },
    )
    print(f"Wrote {path.relative_to(REPO_ROOT)}")
    return path
