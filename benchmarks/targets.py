"""The suite's targets (from the issues), checked against a run, and drawn as a chart.

A target is a ratio between two rows of the suite table (``benchmarks.run``):
ours / Channels 4's or ours / Channels 1.1.8's figure in one scenario, with a
bound it must reach (or stay under, for latency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import report
from benchmarks.report import Row


@dataclass
class Target:
    """One target of the issues: the ratio of two rows of the suite table, and its bound."""

    name: str
    scenario: str
    ours: str
    against: str
    #: The ratio ours / against must be at least this (or at most, for "max").
    bound: float
    kind: str = "min"
    vs: str = "c4"
    value: float | None = None

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        met = self.value >= self.bound if self.kind == "min" else self.value <= self.bound
        return "MET" if met else "MISSED"


def targets(lines: Sequence[Row]) -> list[Target]:
    """The issue's targets, with the ratios of this run's suite table *lines*."""
    figure = {(line.scenario, line.impl): line.rate for line in lines if not line.error}
    seq = "layer round trips, Redis"
    wanted = [
        Target(
            "Redis layer round trips (sync) >= 2.5x channels_redis",
            seq,
            "ours-redis-sync",
            "anchor-redis",
            2.5,
        ),
        Target(
            "Redis layer round trips (async) >= 2.5x channels_redis",
            seq,
            "ours-redis-async",
            "anchor-redis",
            2.5,
        ),
        Target(
            "Redis layer round trips (sync) >= 0.8x bare redis-py loop",
            seq,
            "ours-redis-sync",
            "floor-sync",
            0.8,
            vs="floor",
        ),
        Target(
            "Redis layer round trips (async) >= 0.8x bare redis-py asyncio loop",
            seq,
            "ours-redis-async",
            "floor-async",
            0.8,
            vs="floor",
        ),
        Target(
            "HTTP req/s >= 1.25x Channels 1.1.8",
            "http hello world",
            "ours",
            "classic",
            1.25,
            vs="c1",
        ),
        Target("HTTP req/s >= 2x Channels 4", "http hello world", "ours", "anchor", 2.0),
        Target("fan-out >= 1.5x Channels 4", "ws fan-out to 200", "ours", "anchor", 1.5),
        Target(
            "fan-out >= 3x Channels 1.1.8", "ws fan-out to 200", "ours", "classic", 3.0, vs="c1"
        ),
        Target(
            "echo p50 <= 2x Channels 4", "ws echo p50 (1 client)", "ours", "anchor", 2.0, kind="max"
        ),
        Target("echo 50 clients >= 0.8x Channels 4", "ws echo, 50 clients", "ours", "anchor", 0.8),
        Target(
            "echo 50 clients >= 3x Channels 1.1.8",
            "ws echo, 50 clients",
            "ours",
            "classic",
            3.0,
            vs="c1",
        ),
    ]
    for target in wanted:
        target.value = report.ratio(
            figure.get((target.scenario, target.ours)),
            figure.get((target.scenario, target.against)),
        )
    return wanted


def target_lines(found: Sequence[Target]) -> list[str]:
    """One line per target: met, missed or n/a, and the ratio."""
    return [
        f"  {target.verdict:<6} {target.name}: {report.fmt_ratio(target.value)}" for target in found
    ]


# Chart ------------------------------------------------------------------------------------


def chart(lines: Sequence[Row], found: Sequence[Target], path: Path) -> str | None:
    """Draw our figures relative to Channels 4's per scenario, with the targets, as a PNG.

    Returns why no chart was drawn, or None. matplotlib comes with the
    ``bench`` extra (``pip install -e .[bench]``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib not installed ({exc}): pip install -e .[bench]"
    bars = [line for line in lines if line.impl.startswith("ours") and line.ratios.get("vs_c4")]
    if not bars:
        return "no ratios to Channels 4 in this run"
    # Lower-is-better figures are inverted, so every bar reads "higher is better".
    ratios = [line.ratios["vs_c4"] or 1.0 for line in bars]
    heights = [
        1 / value if line.figures.get("lower_is_better") else value
        for line, value in zip(bars, ratios, strict=True)
    ]
    names = [
        line.scenario + (f" ({line.impl.rsplit('-', 1)[-1]})" if line.impl != "ours" else "")
        for line in bars
    ]
    fig, ax = plt.subplots(figsize=(max(8, 0.8 * len(bars) + 2), 7))
    colors = ["tab:blue" if height >= 1 else "tab:orange" for height in heights]
    ax.bar(range(len(bars)), heights, color=colors)
    for index, height in enumerate(heights):
        ax.text(index, height, f"{height:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.8)
    for target in found:
        if target.vs != "c4":
            continue
        for index, line in enumerate(bars):
            if line.scenario == target.scenario and line.impl == target.ours:
                bound = 1 / target.bound if target.kind == "max" else target.bound
                ax.hlines(bound, index - 0.45, index + 0.45, colors="red", linestyles="dashed")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ours vs Channels 4 (x, higher is better)")
    ax.set_title(
        "channels-classic vs Channels 4, same run (latency and memory inverted: C4 / ours)"
        "\nred dashes: targets"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
