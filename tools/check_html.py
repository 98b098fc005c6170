#!/usr/bin/env python3
"""Open built book pages in headless Chromium and fail on what a reader would see broken.

For every page (default: every content page under ``_build/html``) this checks

* **math**: every Sphinx math element (``.math``) was typeset by MathJax into an ``mjx-container``
  and no raw TeX delimiter (``\\(``, ``\\[``, ``$$``) is left in the visible text outside code;
* **images**: every ``<img>`` decoded with a non-zero natural size;
* **network**: the page requested nothing but local files (``file:``, ``data:``, ``blob:``,
  localhost). This is checked twice: statically, on the ``src``/``href`` of everything the HTML
  loads (scripts, styles, images, frames, fonts in inline CSS), and dynamically, on every
  request Chromium sends while the page loads and typesets (DevTools ``Network`` events). A local
  file that fails to load (a missing ``_static`` asset) fails the page too;
* **console**: no uncaught exception (``Runtime.exceptionThrown``), no ``console.error`` /
  ``console.assert`` failure (``Runtime.consoleAPICalled``) and no browser log entry of level
  error (``Log.entryAdded``) while the page loads, typesets and is resized;
* **figure text size**: every figure PNG carries the tEXt chunks ``stnlib:width_in`` (the
  figure's width in inches as drawn) and ``stnlib:min_font_pt`` (its smallest font size in
  points). Its smallest text as rendered is ``min_font_pt / 72 * rendered_width / width_in`` CSS px,
  with the ``<img>``'s rendered CSS width; below 9 px fails. This is checked at the main window
  width (1400 px) and again at a phone's (420 px). Figures under ``_images/`` without the chunks
  are listed as a note, or fail with ``--require-figure-metadata``;
* **overflow**: at both widths the page is no wider than the window (a wide table must scroll
  inside its own box, not push the page sideways).

With ``--screenshots DIR`` it also saves a PNG of each page (``--width``, ``--dark``), or of the
first element matching ``--selector``.

It prints one line per page, ``OK`` or ``FAIL`` with the reasons, each with what was checked and
how many bytes the page loaded, and exits 1 if any page failed (2 when it could not run at all). It talks to Chromium over the DevTools protocol through the ``websocket-client``
package, and reads PNG chunks with Pillow.

    python tools/check_html.py                      # every page of _build/html
    python tools/check_html.py _build/html/conclusions.html --screenshots /tmp/shots \\
        --width 420 --dark --selector table.claims-ledger
"""

from __future__ import annotations

import argparse
import html.parser
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1400,1000",
    "--remote-allow-origins=*",
)
#: Window width (CSS px) of the main pass, and of a phone for the second figure-text pass.
DESKTOP_WIDTH = 1400
PHONE_WIDTH = 420
WINDOW_HEIGHT = 1000
#: Smallest text a reader can be asked to read in a figure, in CSS px (the WCAG-ish floor).
MIN_TEXT_PX = 9.0
#: The PNG tEXt chunks every book figure carries (written by stnlib's plotting side).
WIDTH_KEY = "stnlib:width_in"
FONT_KEY = "stnlib:min_font_pt"
#: Generated pages without book content.
SKIP_PAGES = {"genindex.html", "search.html", "py-modindex.html"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "devtools", "chrome-error"}


@dataclass
class PageResult:
    page: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Book figures without text-size metadata (a note unless --require-figure-metadata).
    missing_metadata: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self, base: Path | None = None) -> str:
        name = os.path.relpath(self.page, base) if base else str(self.page)
        if self.ok:
            return f"OK   {name}: {', '.join(self.notes)}"
        return f"FAIL {name}: {'; '.join(dict.fromkeys(self.problems))} [{', '.join(self.notes)}]"


def is_external(url: str) -> bool:
    """True for a URL that would leave the machine (anything but local files and localhost)."""
    url = url.strip()
    if url.startswith("//"):
        url = "https:" + url
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if not scheme:  # a relative path
        return False
    if scheme in LOCAL_SCHEMES:
        return False
    if scheme in ("http", "https", "ws", "wss"):
        return (parsed.hostname or "") not in LOCAL_HOSTS
    return True  # ftp:, and whatever else: not expected in a static book


# ---------------------------------------------------------------------------------------
# static check


class _ResourceParser(html.parser.HTMLParser):
    """Collects the URLs an HTML page makes the browser load (not plain links)."""

    LOADING_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut",
                    "apple-touch-icon", "manifest", "preconnect", "dns-prefetch"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []  # (what, url)
        self._in_style = False

    def _srcset(self, what: str, value: str) -> None:
        for part in value.split(","):
            if part.strip():
                self.urls.append((what, part.strip().split()[0]))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script" and a.get("src"):
            self.urls.append(("script", a["src"]))
        elif tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            if rels & self.LOADING_RELS:
                self.urls.append((f"link rel={a.get('rel')}", a["href"]))
        elif tag in ("img", "source", "iframe", "embed", "video", "audio", "track", "input"):
            if a.get("src"):
                self.urls.append((tag, a["src"]))
            if a.get("srcset"):
                self._srcset(tag, a["srcset"])
            if a.get("poster"):
                self.urls.append((tag, a["poster"]))
        elif tag == "object" and a.get("data"):
            self.urls.append(("object", a["data"]))
        if a.get("style"):
            self._css("style attribute", a["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css("<style>", data)

    def _css(self, what: str, css: str) -> None:
        for m in re.finditer(r"""url\(\s*['"]?([^'")]+)""", css):
            self.urls.append((what, m.group(1)))
        for m in re.finditer(r"""@import\s+['"]([^'"]+)""", css):
            self.urls.append((what, m.group(1)))


def static_external_resources(page: Path) -> list[str]:
    """``what url`` for every resource the page's HTML loads from outside the machine."""
    parser = _ResourceParser()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return [f"{what} {url}" for what, url in parser.urls if is_external(url)]


# ---------------------------------------------------------------------------------------
# DevTools protocol


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws_url: str, timeout: float = 30.0):
        try:
            import websocket  # the websocket-client package
        except ImportError:
            raise SystemExit(
                "check_html: needs the websocket-client package (pip install websocket-client)"
            ) from None
        self._ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict] = []

    def close(self) -> None:
        self._ws.close()

    def _recv(self) -> dict:
        return json.loads(self._ws.recv())

    def call(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = self._recv()
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"DevTools {method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(f"DevTools {method}: no answer within {timeout:.0f} s")

    def wait_for(self, event: str, timeout: float) -> bool:
        if any(e["method"] == event for e in self.events):
            return True
        deadline = time.monotonic() + timeout
        import websocket

        while time.monotonic() < deadline:
            self._ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                msg = self._recv()
            except websocket.WebSocketTimeoutException:
                break
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == event:
                    return True
        return False

    def evaluate(self, expression: str, timeout: float = 30.0):
        res = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                             "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails'].get('text')}")
        return res["result"].get("value")


_PAGE_SCRIPT = r"""
(async () => {
  const BUDGET = %(budget_ms)d;
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const out = {math: 0, typeset: 0, untypeset: [], rawTex: [], images: 0, broken: [], mathjax: "not needed"};
  const maths = Array.from(document.querySelectorAll(".math"));
  out.math = maths.length;
  if (maths.length) {
    const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
    const t0 = Date.now();
    while (!ready() && Date.now() - t0 < BUDGET) await sleep(100);
    if (!ready()) {
      out.mathjax = "MathJax did not load";
    } else {
      out.mathjax = "loaded";
      let settled = false;
      await Promise.race([
        MathJax.startup.promise.then(() => { settled = true; }, e => { out.mathjax = "MathJax error: " + e; }),
        sleep(Math.max(0, BUDGET - (Date.now() - t0)))]);
      if (!settled && out.mathjax === "loaded") out.mathjax = "MathJax still typesetting after the budget";
    }
    for (const el of maths) {
      if (el.querySelector("mjx-container")) out.typeset += 1;
      else out.untypeset.push(el.textContent.trim().slice(0, 60));
    }
  }
  // raw TeX left in the visible text (code and typeset math excluded)
  const skip = "script, style, noscript, textarea, pre, code, mjx-container, .highlight, .cell_input, .MathJax_Preview";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    const t = n.textContent;
    for (const d of ["\\(", "\\[", "$$"]) {
      const k = t.indexOf(d);
      if (k >= 0) out.rawTex.push(t.slice(Math.max(0, k - 20), k + 40).replace(/\s+/g, " ").trim());
    }
  }
  // images: force lazy ones to load, then ask each whether it decoded
  const imgs = Array.from(document.images);
  out.images = imgs.length;
  const results = await Promise.all(imgs.map(img => {
    img.loading = "eager";
    return Promise.race([img.decode().then(() => true, () => false), sleep(BUDGET).then(() => null)]);
  }));
  imgs.forEach((img, i) => {
    const src = img.getAttribute("src") || "(no src)";
    const svg = /\.svg($|[?#])/i.test(src) || src.startsWith("data:image/svg");
    if (results[i] === false) out.broken.push(src + " (does not decode)");
    else if (results[i] === null) out.broken.push(src + " (did not load in time)");
    else if (img.naturalWidth === 0 && !svg) out.broken.push(src + " (naturalWidth 0)");
  });
  return out;
})()
"""


class Browser:
    """Headless Chromium with remote debugging on a port it picks itself."""

    def __init__(self, chromium: str, timeout: float = 30.0):
        self._profile = tempfile.mkdtemp(prefix="check-html-")
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
               "--remote-debugging-port=0", "about:blank"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{chromium} did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        # Localhost only: bypass any proxy settings of the environment.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        targets = []
        while time.monotonic() < deadline:
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = [t for t in json.load(r) if t.get("type") == "page"]
            if targets:
                break
            time.sleep(0.1)
        if not targets:
            self.close()
            raise RuntimeError("Chromium opened no page to drive")
        self.tools = DevTools(targets[0]["webSocketDebuggerUrl"], timeout=timeout)
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.tools.call(f"{domain}.enable")

    def close(self) -> None:
        with _suppress():
            self.tools.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


# ---------------------------------------------------------------------------------------
# figure text size


@dataclass(frozen=True)
class FigureMeta:
    """What a figure PNG says about itself: drawn width (in) and smallest font (pt)."""

    width_in: float
    min_font_pt: float

    def text_px(self, rendered_width_css: float) -> float:
        """Smallest text of the figure, in CSS px, when the image is drawn this wide."""
        return self.min_font_pt / 72.0 * (rendered_width_css / self.width_in)


def read_figure_meta(path: Path) -> FigureMeta | str | None:
    """The figure metadata of the image at ``path``: a ``FigureMeta``; ``None`` when it carries
    neither chunk (or is no image Pillow reads, e.g. an SVG); or a string saying what is wrong
    with the chunks it has (one missing, a value that is not a positive number)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            text = dict(getattr(im, "text", None) or {})
    except (OSError, UnidentifiedImageError):
        return None
    found = {k: text.get(k) for k in (WIDTH_KEY, FONT_KEY)}
    if all(v is None for v in found.values()):
        return None
    missing = [k for k, v in found.items() if v is None]
    if missing:
        return f"has {', '.join(k for k in found if k not in missing)} but not {', '.join(missing)}"
    values = {}
    for key, raw in found.items():
        try:
            values[key] = float(raw)
        except ValueError:
            values[key] = float("nan")
        if not (math.isfinite(values[key]) and values[key] > 0):
            return f"has {key}={raw!r}; expected a positive number"
    return FigureMeta(width_in=values[WIDTH_KEY], min_font_pt=values[FONT_KEY])


_LAYOUT_SCRIPT = r"""
(async () => {
  // two frames, so a viewport change has been laid out before anything is measured
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  // The widest element that pushes the page past the window's right edge, if any: one that is
  // not inside a box that clips or scrolls it, and not hidden or off-canvas (fixed).
  const docWidth = document.documentElement.scrollWidth;
  let widest = null;
  if (docWidth > window.innerWidth + 1) {
    const clipped = el => {
      const own = getComputedStyle(el);
      if (own.visibility === "hidden" || own.position === "fixed") return true;
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        const cs = getComputedStyle(a);
        if (cs.overflowX !== "visible" || cs.position === "fixed") return true;
      }
      return false;
    };
    for (const el of (document.querySelector("main") || document.body).querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.right <= window.innerWidth + 1 || r.width === 0 || clipped(el)) continue;
      if (!widest || r.right > widest.right)
        widest = {right: r.right, what: el.tagName.toLowerCase() + (el.className && typeof el.className === "string"
          ? "." + el.className.trim().split(/\s+/).join(".") : ""),
          text: (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 60)};
    }
  }
  return {
    innerWidth: window.innerWidth,
    docWidth: docWidth,
    widest: widest,
    images: Array.from(document.images).map(img => {
      const r = img.getBoundingClientRect();
      return {src: img.getAttribute("src") || "", url: img.currentSrc || img.src || "",
              width: r.width, height: r.height};
    }),
  };
})()
"""


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def check_figures(measured: dict, *, window: str, result: PageResult, meta_cache: dict,
                  require_metadata: bool, report_metadata: bool = True,
                  min_text_px: float = MIN_TEXT_PX) -> float | None:
    """Apply the figure-text rule to one measurement of a page's images (``_LAYOUT_SCRIPT``).

    Adds problems and notes to ``result`` and returns the smallest text size found (CSS px).
    Metadata that is missing (a book figure under ``_images/``: a note, or a problem with
    ``require_metadata``) or malformed (always a problem) is reported only when
    ``report_metadata``, so that a second pass at another width does not repeat it.
    """
    smallest = None
    hidden = 0
    for img in measured["images"]:
        path = _local_path(img["url"])
        if path is None or not path.is_file():
            continue  # a broken or non-local image is reported by the image and network checks
        if path not in meta_cache:
            meta_cache[path] = read_figure_meta(path)
        meta = meta_cache[path]
        if isinstance(meta, str):
            if report_metadata:
                result.problems.append(f"figure {img['src']} {meta}")
            continue
        if meta is None:
            if report_metadata and path.parent.name == "_images":
                what = f"figure {img['src']} has no {WIDTH_KEY}/{FONT_KEY} PNG chunks"
                (result.problems if require_metadata else result.missing_metadata).append(what)
            continue
        if img["width"] <= 0 or img["height"] <= 0:
            hidden += 1  # inside a collapsed block: not drawn, nothing to measure
            continue
        px = meta.text_px(img["width"])
        smallest = px if smallest is None else min(smallest, px)
        if px < min_text_px:
            result.problems.append(
                f"figure {img['src']}: smallest text {px:.1f} px at a {window} window (under "
                f"{min_text_px:g} px): {meta.min_font_pt:g} pt in a {meta.width_in:g} in wide figure "
                f"drawn {img['width']:.0f} px wide")
    if hidden:
        result.notes.append(f"{hidden} figure(s) hidden at {window}, not measured")
    return smallest


def check_overflow(measured: dict, *, window: str, result: PageResult) -> None:
    """A page wider than the window makes a reader scroll the whole page sideways (on a phone:
    text cut off at the edge); a wide table or formula should scroll inside its own box."""
    if measured["docWidth"] > measured["innerWidth"] + 1:
        w = measured.get("widest")
        culprit = f" (widest: <{w['what']}> {w['text']!r}, to x={w['right']:.0f})" if w else ""
        result.problems.append(
            f"page is {measured['docWidth']} px wide in a {window} window: content overflows{culprit}")


# ---------------------------------------------------------------------------------------
# one page


def _console_problems(events: list[dict]) -> list[str]:
    """Uncaught exceptions, console.error/assert calls and error-level log entries."""
    problems = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = (d.get("exception") or {}).get("description") or d.get("text") or "?"
            where = f" ({d['url']}:{d.get('lineNumber', 0) + 1})" if d.get("url") else ""
            problems.append(f"uncaught exception: {text.splitlines()[0]}{where}")
        elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            problems.append(f"console.{p['type']}: {args[:200]}")
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            where = f" ({entry['url']})" if entry.get("url") else ""
            problems.append(f"console error ({entry.get('source', '?')}): {entry.get('text', '')[:200]}{where}")
    return problems


def _set_viewport(tools: DevTools, width: int, height: int = WINDOW_HEIGHT) -> None:
    # A window this wide, not a mobile emulation: the theme's layout only follows the width,
    # and a mobile viewport would zoom out over an overflowing table instead of showing it.
    tools.call("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def _set_color_scheme(tools: DevTools, dark: bool) -> None:
    tools.call("Emulation.setEmulatedMedia",
               {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})


_DARK_SCRIPT = r"""
(async () => {
  // The pydata theme follows prefers-color-scheme when the mode is "auto"; set it outright too,
  // so the shot is dark whatever the theme's default mode is.
  document.documentElement.dataset.mode = "dark";
  document.documentElement.dataset.theme = "dark";
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return document.documentElement.dataset.theme;
})()
"""

_CLIP_SCRIPT = r"""
(async () => {
  window.scrollTo(0, 0);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const sel = %(selector)s;
  const el = sel ? document.querySelector(sel) : document.documentElement;
  if (!el) return null;
  const r = sel ? el.getBoundingClientRect()
                : {left: 0, top: 0, width: el.scrollWidth, height: el.scrollHeight};
  // Only what lies inside the window: a reader never sees what overflows to the right of it.
  const x = Math.max(0, r.left + window.scrollX);
  return {x: x, y: r.top + window.scrollY, height: r.height,
          width: Math.min(r.left + window.scrollX + r.width, window.innerWidth) - x};
})()
"""
#: Tallest window a screenshot grows to (CSS px), under Chromium's 16384 px texture limit; a
#: longer page is cut there.
MAX_SHOT_HEIGHT = 16000


def take_screenshot(tools: DevTools, path: Path, *, width: int, selector: str | None = None,
                    palette: bool = False) -> str | None:
    """Save a PNG of the whole page, or of the first element matching ``selector``, to ``path``.

    The window is made as tall as the page (up to ``MAX_SHOT_HEIGHT``) and the page scrolled to
    the top, then the clip is captured from the window itself: a sticky header stays at the top
    instead of being painted over a tall element, and nothing is drawn outside the window.
    (DevTools' ``captureBeyondViewport`` garbled pages with scrolling table outputs, shifting
    their content by hundreds of pixels from one run to the next.) Returns a problem string when
    the selector matches nothing or an element that is not displayed, else None. With
    ``palette`` the PNG is reduced to 256 colours: a third of the size for a shot of text and
    tables, for screenshots kept in git.
    """
    import base64

    height = tools.evaluate("document.documentElement.scrollHeight")
    _set_viewport(tools, width, height=min(height, MAX_SHOT_HEIGHT))
    try:
        clip = tools.evaluate(_CLIP_SCRIPT % {"selector": json.dumps(selector)})
        if clip is None:
            return f"screenshot: no element matches {selector!r}"
        if clip["width"] < 1 or clip["height"] < 1:
            return f"screenshot: {selector!r} is not displayed (size {clip['width']:.0f}x{clip['height']:.0f})"
        clip["height"] = min(clip["height"], MAX_SHOT_HEIGHT - clip["y"])
        shot = tools.call("Page.captureScreenshot", {
            "format": "png", "clip": {k: clip[k] for k in ("x", "y", "width", "height")} | {"scale": 1}},
            timeout=60)
    finally:
        _set_viewport(tools, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = base64.b64decode(shot["data"])
    if palette:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, "PNG", optimize=True)
    else:
        path.write_bytes(data)
    return None


def screenshot_name(page: Path, width: int, dark: bool) -> str:
    return f"{page.stem}-{width}{'-dark' if dark else ''}.png"


def _loaded_bytes(requests: list[dict]) -> int:
    """Bytes of the distinct local files the page requested (its load weight, uncompressed)."""
    seen = set()
    total = 0
    for r in requests:
        path = _local_path(r["request"]["url"])
        if path is not None and path not in seen and path.is_file():
            seen.add(path)
            total += path.stat().st_size
    return total


def check_page(browser: Browser, page: Path, *, budget_s: float = 8.0,
               screenshot_dir: Path | None = None, width: int = DESKTOP_WIDTH,
               phone_width: int = PHONE_WIDTH, dark: bool = False, selector: str | None = None,
               palette: bool = False,
               require_figure_metadata: bool = False, min_text_px: float = MIN_TEXT_PX) -> PageResult:
    """Load ``page`` and collect every problem a reader would notice (see the module docstring)."""
    result = PageResult(page)
    for what in static_external_resources(page):
        result.problems.append(f"HTML loads an internet resource: {what}")

    tools = browser.tools
    _set_viewport(tools, width)
    _set_color_scheme(tools, dark)
    # Every page as a first visit: the theme keeps state (light/dark mode) in localStorage,
    # which all file: pages share.
    tools.evaluate("(() => { try { localStorage.clear(); sessionStorage.clear(); } catch (e) {} })()")
    tools.events.clear()
    tools.call("Page.navigate", {"url": page.resolve().as_uri()})
    if not tools.wait_for("Page.loadEventFired", timeout=max(20.0, budget_s)):
        result.problems.append("page did not finish loading")
    try:
        out = tools.evaluate(_PAGE_SCRIPT % {"budget_ms": int(budget_s * 1000)},
                             timeout=3 * budget_s + 10)
    except (RuntimeError, TimeoutError) as err:
        result.problems.append(str(err))
        out = None

    if out is not None:
        if out["math"]:
            if out["mathjax"] != "loaded":
                result.problems.append(out["mathjax"])
            if out["untypeset"]:
                result.problems.append(
                    f"{len(out['untypeset'])} of {out['math']} formulas not typeset, e.g. {out['untypeset'][0]!r}")
        if out["rawTex"]:
            result.problems.append(f"raw TeX in the text: {out['rawTex'][0]!r}"
                                   + (f" (+{len(out['rawTex']) - 1} more)" if len(out["rawTex"]) > 1 else ""))
        for src in out["broken"]:
            result.problems.append(f"broken image {src}")
        result.notes.append(f"{out['typeset']}/{out['math']} formulas typeset")
        result.notes.append(f"{out['images']} images")

    # Figure text, in the main window and then on a phone (and the screenshot in between).
    meta_cache: dict = {}
    smallest = {}
    passes = [(width, False)] + ([(phone_width, True)] if phone_width and phone_width != width else [])
    for pass_width, second in passes:
        try:
            if second:
                _set_viewport(tools, pass_width)
            measured = tools.evaluate(_LAYOUT_SCRIPT)
        except (RuntimeError, TimeoutError) as err:
            result.problems.append(f"measuring figures at {pass_width} px: {err}")
            continue
        smallest[pass_width] = check_figures(
            measured, window=f"{pass_width} px", result=result, meta_cache=meta_cache,
            require_metadata=require_figure_metadata, report_metadata=not second,
            min_text_px=min_text_px)
        check_overflow(measured, window=f"{pass_width} px", result=result)
        if not second and screenshot_dir is not None:
            if dark:
                tools.evaluate(_DARK_SCRIPT)
            problem = take_screenshot(tools, screenshot_dir / screenshot_name(page, width, dark),
                                      width=width, selector=selector, palette=palette)
            if problem:
                result.problems.append(problem)
    if any(v is not None for v in smallest.values()):
        result.notes.append("smallest figure text " + ", ".join(
            f"{v:.1f} px at {w} px" for w, v in smallest.items() if v is not None))
    if result.missing_metadata:  # a note; a problem with --require-figure-metadata
        result.notes.append(f"{len(result.missing_metadata)} figure(s) without text-size metadata")

    tools.wait_for("__settle__", timeout=0.3)  # collect requests and messages still in flight
    result.problems.extend(_console_problems(tools.events))

    requests = [e["params"] for e in tools.events if e["method"] == "Network.requestWillBeSent"]
    external = sorted({r["request"]["url"] for r in requests if is_external(r["request"]["url"])})
    for url in external:
        result.problems.append(f"requested {url}")
    by_id = {r["requestId"]: r["request"]["url"] for r in requests}
    for e in tools.events:
        if e["method"] == "Network.loadingFailed":
            url = by_id.get(e["params"]["requestId"], "?")
            if not is_external(url) and not e["params"].get("canceled"):
                result.problems.append(f"local file failed to load: {url} ({e['params'].get('errorText')})")
    result.notes.append(f"{len(requests)} requests ({_loaded_bytes(requests) / 1e3:.0f} kB), none external"
                        if not external else f"{len(external)} external requests")
    return result


def default_pages(html_dir: Path) -> list[Path]:
    """Every book page under ``html_dir`` (not the index redirect, search or generated indices)."""
    pages = []
    for p in sorted(html_dir.rglob("*.html")):
        rel = p.relative_to(html_dir)
        if rel.parts[0].startswith("_") or p.name in SKIP_PAGES:
            continue
        head = p.read_text(encoding="utf-8", errors="replace")[:2000]
        if re.search(r'http-equiv="refresh"', head, re.I):  # index.html -> root page
            continue
        pages.append(p)
    return pages


def check_pages(pages: list[Path], *, chromium: str = DEFAULT_CHROMIUM, **options) -> list[PageResult]:
    """Check each page in one browser; ``options`` go to ``check_page``."""
    with Browser(chromium) as browser:
        return [check_page(browser, p, **options) for p in pages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path,
                        help="HTML files to check (default: every book page under --html-dir)")
    parser.add_argument("--html-dir", type=Path, default=Path("_build/html"))
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", DEFAULT_CHROMIUM))
    parser.add_argument("--budget", type=float, default=8.0,
                        help="seconds allowed for MathJax and images per page (default 8)")
    parser.add_argument("--width", type=_width, default=DESKTOP_WIDTH,
                        help=f"window width in CSS px for the checks and screenshots (default {DESKTOP_WIDTH})")
    parser.add_argument("--phone-width", type=_width_or_off, default=PHONE_WIDTH,
                        help=f"second window width for the figure-text rule (default {PHONE_WIDTH}; 0: skip)")
    parser.add_argument("--dark", action="store_true",
                        help="emulate prefers-color-scheme: dark (and set the theme's data-theme=dark)")
    parser.add_argument("--require-figure-metadata", action="store_true",
                        help=f"fail a figure under _images/ without {WIDTH_KEY}/{FONT_KEY} (default: a note)")
    parser.add_argument("--screenshots", type=Path, default=None, metavar="DIR",
                        help="also save a full-page PNG of each page here, as PAGE-WIDTH[-dark].png")
    parser.add_argument("--selector", default=None, metavar="CSS",
                        help="with --screenshots: clip each shot to the first element matching this "
                             "CSS selector (e.g. 'table.claims-ledger'); a page without one fails")
    parser.add_argument("--palette", action="store_true",
                        help="with --screenshots: save 256-colour PNGs (about a third of the size)")
    args = parser.parse_args(argv)
    for flag in ("selector", "palette"):
        if getattr(args, flag) and args.screenshots is None:
            parser.error(f"--{flag} only applies to screenshots; add --screenshots DIR")

    if not Path(args.chromium).exists() and not shutil.which(args.chromium):
        print(f"check_html: no Chromium at {args.chromium} (bash tools/install_chromium.sh, or --chromium PATH)",
              file=sys.stderr)
        return 2
    pages = args.pages or default_pages(args.html_dir)
    missing = [p for p in pages if not p.is_file()]
    if missing or not pages:
        print(f"check_html: no such page(s): {', '.join(map(str, missing))}" if missing else
              f"check_html: no pages under {args.html_dir}; build the book first (make book)",
              file=sys.stderr)
        return 2
    base = args.html_dir if all(args.html_dir.resolve() in p.resolve().parents for p in pages) else None
    t0 = time.monotonic()
    try:
        results = check_pages(pages, chromium=args.chromium, budget_s=args.budget,
                              screenshot_dir=args.screenshots, width=args.width,
                              phone_width=args.phone_width, dark=args.dark, selector=args.selector,
                              palette=args.palette,
                              require_figure_metadata=args.require_figure_metadata)
    except RuntimeError as err:
        print(f"check_html: {err}", file=sys.stderr)
        return 2
    for r in results:
        print(r.line(base), flush=True)
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} of {len(results)} pages OK ({time.monotonic() - t0:.1f} s)")
    return 1 if failed else 0


def _width(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 200 <= value <= 4000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a window width; give whole CSS px from 200 to 4000")
    return value


def _width_or_off(text: str) -> int:
    return 0 if text.strip() == "0" else _width(text)


if __name__ == "__main__":
    sys.exit(main())
