"""The report as a reader sees it: opened from a file in headless Chromium, with no network.

Needs Debian's ``chromium`` (``.ci/run`` installs it when missing). Where there is no
Chromium the test is skipped and says why; it never passes without looking.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import sim
from sim.report.html import build

BASE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# a closed network: Chromium must not try to reach anything on its own
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    scn = sim.load(BASE, {"run.duration": "120ms", "run.warmup": "20ms"})
    out = tmp_path_factory.mktemp("browser") / "run"
    res = sim.run(scn, replications=2)
    res.meta["command"] = "hvsim run scenarios/baseline.yaml " + "--set run.duration=120ms " * 20
    res.save(out)
    return build(out).resolve().as_uri()


def test_report_renders_in_headless_chromium(page_url: str) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (Debian package 'chromium'): report not viewed")
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_url, wait_until="load")
            title = page.title()
            headings = page.locator("h2").all_inner_texts()
            images = page.locator("figure img")
            count = images.count()
            shown = []
            for i in range(count):
                img = images.nth(i)
                img.scroll_into_view_if_needed()
                box = img.bounding_box()
                loaded = img.evaluate(
                    "e => e.complete && e.naturalWidth > 0 && e.naturalHeight > 0"
                )
                shown.append((img.is_visible(), loaded, box is not None and box["width"] > 300))
            rows = page.locator("#headline table").first.locator("tbody tr").count()
            overflow = page.evaluate(
                "document.documentElement.scrollWidth > document.documentElement.clientWidth"
            )
            cut = page.evaluate(  # a block whose text runs past its edge (a long command)
                "[...document.querySelectorAll('pre')]"
                ".filter(e => e.scrollWidth > e.clientWidth + 1).length"
            )
        finally:
            browser.close()
    assert title.startswith("baseline")
    assert headings[:4] == ["The question", "Headline", "Warnings", "Figures"]
    assert count == 3  # CDF, breakdown, CPU (rings nearly empty: no occupancy figure)
    assert all(all(s) for s in shown), shown
    assert rows == 4
    assert not overflow, "the page is wider than the window"
    assert cut == 0, "a command runs past the edge of its box"
    assert errors == []
    # the page fetched nothing but itself and its embedded images
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
