"""No text in a report's figures overlaps another or leaves the figure: every figure of a run
report, of a comparison of 3 paths × 4 children, of a sweep and of a capacity search is
drawn, and the boxes of its texts (tick labels in view, axis labels, titles, legend
entries, annotations) are checked pairwise."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

import sim
from sim.report import html

BASE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.yaml"
SHORT = {"run.duration": "30ms", "run.warmup": "5ms"}


def _in_view(loc: float, lim: tuple[float, float]) -> bool:
    lo, hi = sorted(lim)
    span = (hi - lo) * 1e-9
    return lo - span <= loc <= hi + span


def drawn_texts(fig: Figure) -> Iterator[Text]:
    """The texts a drawn figure shows."""
    for ax in fig.axes:
        for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if tick.get_visible() and _in_view(tick.get_loc(), lim):
                    yield from (tick.label1, tick.label2)
            yield axis.label
            yield axis.get_offset_text()
        yield from (ax.title, ax._left_title, ax._right_title)
        yield from ax.texts
        if ax.get_legend() is not None:
            yield from ax.get_legend().get_texts()
    yield from fig.texts
    for legend in fig.legends:
        yield from legend.get_texts()


def text_problems(fig: Figure) -> list[str]:
    """Pairs of shown texts whose boxes intersect, and texts cut by the figure's edge."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    shown = [t for t in drawn_texts(fig) if t.get_visible() and t.get_text().strip()]
    boxes = [t.get_window_extent(renderer).padded(-0.5) for t in shown]
    page = Bbox.from_bounds(0, 0, *fig.canvas.get_width_height()).padded(1.0)
    out = [
        f"{t.get_text()!r} leaves the figure"
        for t, b in zip(shown, boxes, strict=True)
        if not (page.contains(b.x0, b.y0) and page.contains(b.x1, b.y1))
    ]
    for (ta, a), (tb, b) in itertools.combinations(zip(shown, boxes, strict=True), 2):
        if a.overlaps(b):
            out.append(f"{ta.get_text()!r} overlaps {tb.get_text()!r}")
    return out


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure a report draws, kept as it is turned into SVG."""
    drawn: list[Figure] = []
    svg = html._svg

    def keep(fig: Figure) -> str:
        drawn.append(fig)
        return svg(fig)

    monkeypatch.setattr(html, "_svg", keep)
    return drawn


def _check(figures: list[Figure], at_least: int) -> None:
    assert len(figures) >= at_least
    problems = {f"figure {i} ({fig.axes[0].get_title()})": text_problems(fig)
                for i, fig in enumerate(figures)}  # fmt: skip
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_checker_sees_an_overlap() -> None:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.set_title("a title")
    ax.text(0.5, 1.02, "over the title", transform=ax.transAxes, ha="center")
    assert any("overlaps" in p for p in text_problems(fig))


def test_run_report(figures: list[Figure], tmp_path: Path) -> None:
    sim.run(sim.load(BASE, SHORT), replications=2).save(tmp_path / "run")
    html.render(tmp_path / "run")
    _check(figures, 3)


def test_comparison_of_three_paths_and_four_children(figures: list[Figure], tmp_path: Path) -> None:
    from sim.experiment.compare import compare

    scn = sim.load(BASE, SHORT)
    assert len(scn.children) == 4
    compare(scn, ("routed", "direct", "native"), replications=2).save(tmp_path / "cmp")
    html.render(tmp_path / "cmp")
    _check(figures, 3)


def test_sweep_report(figures: list[Figure], tmp_path: Path) -> None:
    from sim.experiment.study import make_sweep, run_sweep

    rate = "children[web-routed].streams[0].rate, children[web-direct].streams[0].rate"
    spec = {"study": "mini", "scenario": str(BASE), "set": SHORT,
            "grid": {rate: ["10k", "40k", "120k"]}, "replications": 2}  # fmt: skip
    run_sweep(make_sweep(spec), tmp_path / "sweep", executor="serial", progress=False)
    html.render(tmp_path / "sweep")
    _check(figures, 2)


def test_capacity_report(figures: list[Figure], tmp_path: Path) -> None:
    from sim.experiment.capacity import search

    scn = sim.load(Path(BASE).parent / "capacity.yaml", {"run.duration": "15ms",
                                                         "run.warmup": "3ms"})  # fmt: skip
    search(scn, "p99<=200us", replications=2, resolution=0.3).save(tmp_path / "cap")
    html.render(tmp_path / "cap")
    _check(figures, 1)
