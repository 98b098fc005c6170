"""Tests of tools/check_html.py, the headless-Chromium check of the built book.

The rules are tested on planted pages: each bad page must fail for its own reason, and a good
page must pass, so the check is shown to be able to fail. The browser tests skip without
Chromium, except with STNLIB_REQUIRE_BROWSER=1 (set by .ci/run), where that skip is a failure.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def load_check_html():
    spec = importlib.util.spec_from_file_location("check_html", ROOT / "tools" / "check_html.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def skip_or_fail(reason: str, *, unless: str) -> None:
    """Skip the test, or fail it when the environment variable ``unless`` is 1: CI sets it
    where the test must run (.ci/run)."""
    if os.environ.get(unless) == "1":
        pytest.fail(f"{reason}; {unless}=1 requires this check to run")
    pytest.skip(reason)


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"no Chromium at {CHROMIUM} (bash tools/install_chromium.sh)",
                     unless="STNLIB_REQUIRE_BROWSER")


def write_figure_png(path: Path, *, size_px=(400, 200), width_in: float | None = None,
                     min_font_pt: float | None = None, **chunks: str) -> Path:
    """A PNG shaped like a book figure, carrying the text-size chunks that check_html reads:
    ``stnlib:width_in`` and ``stnlib:min_font_pt`` when given, plus any raw ``chunks``
    (keyword names with ``__`` for ``:``, e.g. ``stnlib__width_in="abc"``)."""
    info = PngImagePlugin.PngInfo()
    if width_in is not None:
        info.add_text("stnlib:width_in", repr(float(width_in)))
    if min_font_pt is not None:
        info.add_text("stnlib:min_font_pt", repr(float(min_font_pt)))
    for key, value in chunks.items():
        info.add_text(key.replace("__", ":"), value)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size_px, (250, 250, 250)).save(path, "PNG", pnginfo=info)
    return path


# ---------------------------------------------------------------------------------------
# rules without a browser


def test_figure_metadata_is_read_from_png_chunks(tmp_path):
    check_html = load_check_html()
    meta = check_html.read_figure_meta(write_figure_png(tmp_path / "a.png", width_in=8, min_font_pt=10))
    assert meta == check_html.FigureMeta(width_in=8.0, min_font_pt=10.0)
    # 10 pt in an 8 in figure drawn 800 CSS px wide: 100 px per inch, so 10/72 in = 13.9 px
    assert meta.text_px(800) == pytest.approx(10 / 72 * 100)
    assert check_html.read_figure_meta(write_figure_png(tmp_path / "none.png")) is None
    svg = tmp_path / "x.svg"
    svg.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert check_html.read_figure_meta(svg) is None
    one = check_html.read_figure_meta(write_figure_png(tmp_path / "one.png", width_in=6))
    assert one == "has stnlib:width_in but not stnlib:min_font_pt"
    for raw in ("abc", "0", "-3", "nan", "inf"):
        bad = check_html.read_figure_meta(
            write_figure_png(tmp_path / "bad.png", min_font_pt=8, stnlib__width_in=raw))
        assert bad == f"has stnlib:width_in={raw!r}; expected a positive number"


def _measured(*images, doc_width=1400, inner=1400, widest=None):
    return {"innerWidth": inner, "docWidth": doc_width, "widest": widest,
            "images": [{"src": p.name, "url": p.as_uri(), "width": w, "height": 10 if w else 0}
                       for p, w in images]}


def test_figure_text_rule(tmp_path):
    check_html = load_check_html()
    figs = tmp_path / "_images"
    good = write_figure_png(figs / "good.png", width_in=4, min_font_pt=10)
    tiny = write_figure_png(figs / "tiny.png", width_in=8, min_font_pt=6)
    plain = write_figure_png(figs / "plain.png")
    logo = write_figure_png(tmp_path / "_static" / "logo.png")  # not a figure: no note
    result = check_html.PageResult(tmp_path / "p.html")
    smallest = check_html.check_figures(
        _measured((good, 400), (tiny, 400), (plain, 400), (logo, 50), (good, 0)),
        window="1400 px", result=result, meta_cache={}, require_metadata=False)
    assert smallest == pytest.approx(6 / 72 * 50)
    assert result.problems == [
        "figure tiny.png: smallest text 4.2 px at a 1400 px window (under 9 px): 6 pt in a 8 in wide "
        "figure drawn 400 px wide"]
    assert result.missing_metadata == ["figure plain.png has no stnlib:width_in/stnlib:min_font_pt PNG chunks"]
    assert result.notes == ["1 figure(s) hidden at 1400 px, not measured"]

    strict = check_html.PageResult(tmp_path / "p.html")
    check_html.check_figures(_measured((plain, 400)), window="1400 px", result=strict, meta_cache={},
                             require_metadata=True)
    assert strict.problems == ["figure plain.png has no stnlib:width_in/stnlib:min_font_pt PNG chunks"]
    second = check_html.PageResult(tmp_path / "p.html")  # a second pass repeats no metadata finding
    check_html.check_figures(_measured((plain, 400)), window="420 px", result=second, meta_cache={},
                             require_metadata=True, report_metadata=False)
    assert second.ok and not second.missing_metadata


def test_overflow_rule(tmp_path):
    check_html = load_check_html()
    result = check_html.PageResult(tmp_path / "p.html")
    check_html.check_overflow(_measured(doc_width=420, inner=420), window="420 px", result=result)
    assert result.ok
    check_html.check_overflow(
        _measured(doc_width=900, inner=420, widest={"what": "table", "text": "wide", "right": 900}),
        window="420 px", result=result)
    assert result.problems == ["page is 900 px wide in a 420 px window: content overflows "
                               "(widest: <table> 'wide', to x=900)"]


def test_console_events_become_problems():
    check_html = load_check_html()
    events = [
        {"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {
            "text": "Uncaught", "url": "file:///b/p.html", "lineNumber": 61,
            "exception": {"description": "SyntaxError: Identifier 'X' has already been declared"}}}},
        {"method": "Runtime.consoleAPICalled", "params": {"type": "error", "args": [
            {"type": "string", "value": "Got invalid theme mode:"}, {"type": "string", "value": "."}]}},
        {"method": "Runtime.consoleAPICalled", "params": {"type": "log", "args": [{"value": "fine"}]}},
        {"method": "Log.entryAdded", "params": {"entry": {
            "level": "error", "source": "network", "text": "Failed to load resource", "url": "file:///b/x.js"}}},
        {"method": "Log.entryAdded", "params": {"entry": {"level": "warning", "text": "deprecated"}}},
    ]
    assert check_html._console_problems(events) == [
        "uncaught exception: SyntaxError: Identifier 'X' has already been declared (file:///b/p.html:62)",
        "console.error: Got invalid theme mode: .",
        "console error (network): Failed to load resource (file:///b/x.js)",
    ]


def test_command_line_refuses_bad_options(capsys):
    check_html = load_check_html()
    for argv, message in ((["--width", "wide"], "'wide' is not a window width"),
                          (["--width", "50"], "give whole CSS px from 200 to 4000"),
                          (["--selector", "table"], "--selector only applies to screenshots")):
        with pytest.raises(SystemExit):
            check_html.main(argv)
        assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# planted pages in Chromium

_GOOD = """<!doctype html><html><head><meta charset="utf-8">
<style>@media (prefers-color-scheme: dark) { body { background: #000; color: #eee } }
.scroll { overflow-x: auto }</style></head>
<body><p>A good page.</p><img id="fig" src="_images/good.png" style="width:300px" alt="good">
<div class="scroll"><table><tr><td style="white-space:nowrap">%s</td></tr></table></div>
<div id="box" style="width:200px;height:100px;background:#c00"></div></body></html>
""" % ("a wide table that scrolls inside its box " * 8)


@pytest.mark.browser
def test_planted_pages_fail_each_rule_and_a_good_page_passes(tmp_path):
    need_chromium()
    check_html = load_check_html()
    figs = tmp_path / "_images"
    write_figure_png(figs / "good.png", size_px=(300, 150), width_in=3, min_font_pt=10)
    write_figure_png(figs / "tiny.png", size_px=(400, 200), width_in=8, min_font_pt=6)
    write_figure_png(figs / "wide.png", size_px=(1200, 300), width_in=12, min_font_pt=10)
    write_figure_png(figs / "plain.png")

    pages = {
        "good": _GOOD,
        "console": ('<html><body><p>Console errors.</p><script>console.error("planted console error")</script>'
                    '<script>const THEBE_JS_URL = 1;</script><script>const THEBE_JS_URL = 2;</script>'
                    '<script>throw new Error("planted exception")</script></body></html>'),
        "tiny": '<html><body><img src="_images/tiny.png" style="width:400px"></body></html>',
        # fine in a 1400 px window, too small once a 420 px phone shrinks it to the screen
        "phone": '<html><body><img src="_images/wide.png" style="max-width:100%"></body></html>',
        "overflow": '<html><body><div style="width:900px">a block wider than a phone</div></body></html>',
        "nometa": '<html><body><img src="_images/plain.png"></body></html>',
    }
    for name, text in pages.items():
        (tmp_path / f"{name}.html").write_text(text)
    paths = [tmp_path / f"{name}.html" for name in pages]
    results = {r.page.stem: r for r in check_html.check_pages(paths, chromium=CHROMIUM, budget_s=2.0)}

    good = results["good"]
    assert good.ok, good.problems
    assert "smallest figure text 13.9 px at 1400 px, 13.9 px at 420 px" in good.notes

    console = " | ".join(results["console"].problems)
    assert "console.error: planted console error" in console
    assert "uncaught exception: SyntaxError: Identifier 'THEBE_JS_URL' has already been declared" in console
    assert "uncaught exception: Error: planted exception" in console

    tiny = results["tiny"].problems
    assert any(p.startswith("figure _images/tiny.png: smallest text 4.2 px at a 1400 px window") for p in tiny)
    assert any(p.startswith("figure _images/tiny.png: smallest text 4.2 px at a 420 px window") for p in tiny)

    phone = results["phone"].problems
    assert len(phone) == 1 and phone[0].startswith("figure _images/wide.png: smallest text 4.") \
        and "at a 420 px window" in phone[0], phone

    assert results["overflow"].problems == [
        "page is 908 px wide in a 420 px window: content overflows "
        "(widest: <div> 'a block wider than a phone', to x=908)"]

    nometa = results["nometa"]
    assert nometa.ok and nometa.missing_metadata and "1 figure(s) without text-size metadata" in nometa.notes
    (strict,) = check_html.check_pages([tmp_path / "nometa.html"], chromium=CHROMIUM, budget_s=2.0,
                                       require_figure_metadata=True)
    assert strict.problems == ["figure _images/plain.png has no stnlib:width_in/stnlib:min_font_pt PNG chunks"]


@pytest.mark.browser
def test_screenshots_at_a_width_in_dark_mode_clipped_to_an_element(tmp_path):
    need_chromium()
    check_html = load_check_html()
    write_figure_png(tmp_path / "_images" / "good.png", size_px=(300, 150), width_in=3, min_font_pt=10)
    page = tmp_path / "good.html"
    page.write_text(_GOOD)
    shots = tmp_path / "shots"
    assert check_html.main([str(page), "--screenshots", str(shots), "--width", "420", "--dark",
                            "--selector", "#box", "--phone-width", "0"]) == 0
    with Image.open(shots / "good-420-dark.png") as im:
        assert im.size == (200, 100)  # the element, not the page
        assert im.convert("RGB").getpixel((100, 50)) == (204, 0, 0)
    assert check_html.main([str(page), "--screenshots", str(shots), "--phone-width", "0"]) == 0
    with Image.open(shots / "good-1400.png") as im:
        assert im.size[0] == 1400 and im.size[1] >= 1000  # the whole page, at least the window
        assert im.convert("RGB").getpixel((5, 5)) == (255, 255, 255)  # light: no dark emulation
    assert check_html.main([str(page), "--screenshots", str(shots), "--dark", "--phone-width", "0"]) == 0
    with Image.open(shots / "good-1400-dark.png") as im:
        assert im.convert("RGB").getpixel((5, 5)) == (0, 0, 0)  # prefers-color-scheme: dark
    assert check_html.main([str(page), "--screenshots", str(shots), "--selector", "#nothing"]) == 1
