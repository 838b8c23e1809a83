"""Inline SVG charts, computed here and drawn by `templates/charts.html`: no script, no
library, nothing fetched. Colours come from CSS classes (`s0`…`s5`), as the CSP allows no
inline style."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Bar", "Chart", "line_chart", "stacked_bars"]

WIDTH, HEIGHT = 640, 200
LEFT, BOTTOM, TOP = 72, 22, 10
SERIES_CLASSES = 6


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass(frozen=True)
class Chart:
    title: str
    bars: list[Bar] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # (css, polyline points)
    dots: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, css, title
    labels: list[tuple[float, str]] = field(default_factory=list)  # x positions of day labels
    top_label: str = ""
    legend: list[tuple[str, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    empty: bool = False

    @property
    def base(self) -> float:
        return self.height - BOTTOM

    @property
    def left(self) -> int:
        return LEFT


def _scale(top: float) -> Callable[[float], float]:
    span = HEIGHT - BOTTOM - TOP
    return lambda value: span * (value / top) if top > 0 else 0.0


def _day_labels(days: Sequence[str], step: float) -> list[tuple[float, str]]:
    every = max(1, len(days) // 7)
    return [(LEFT + step * (i + 0.5), d[5:]) for i, d in enumerate(days) if i % every == 0]


def stacked_bars(
    title: str,
    days: Sequence[str],
    series: dict[str, Sequence[float]],
    fmt: Callable[[float], str],
) -> Chart:
    """One bar per day, stacked by series (kinds of turn)."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = max(totals, default=0.0)
    height = _scale(top)
    step = (WIDTH - LEFT) / max(1, len(days))
    bars: list[Bar] = []
    legend = [(f"s{n % SERIES_CLASSES}", name) for n, name in enumerate(series)]
    for i, day in enumerate(days):
        y = HEIGHT - BOTTOM
        for (css, name), values in zip(legend, series.values(), strict=True):
            h = height(values[i])
            if h <= 0:
                continue
            y -= h
            bars.append(
                Bar(
                    LEFT + step * i + 2,
                    y,
                    max(1.0, step - 4),
                    h,
                    css,
                    f"{day} {name}: {fmt(values[i])}",
                )
            )
    return Chart(
        title,
        bars=bars,
        labels=_day_labels(days, step),
        top_label=fmt(top),
        legend=legend,
        empty=top <= 0,
    )


def line_chart(
    title: str,
    days: Sequence[str],
    series: dict[str, Sequence[float | None]],
    fmt: Callable[[float], str],
) -> Chart:
    """One line per series over the days; a day without a value is left out of its line."""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = max(values, default=0.0)
    height = _scale(top)
    step = (WIDTH - LEFT) / max(1, len(days))
    lines: list[tuple[str, str]] = []
    dots: list[tuple[float, float, str, str]] = []
    legend = [(f"s{n % SERIES_CLASSES}", name) for n, name in enumerate(series)]
    for (css, name), points in zip(legend, series.values(), strict=True):
        coords = []
        for i, value in enumerate(points):
            if value is None:
                continue
            x, y = LEFT + step * (i + 0.5), HEIGHT - BOTTOM - height(value)
            coords.append(f"{x:.1f},{y:.1f}")
            dots.append((x, y, css, f"{days[i]} {name}: {fmt(value)}"))
        if coords:
            lines.append((css, " ".join(coords)))
    return Chart(
        title,
        lines=lines,
        dots=dots,
        labels=_day_labels(days, step),
        top_label=fmt(top),
        legend=legend,
        empty=not values,
    )
