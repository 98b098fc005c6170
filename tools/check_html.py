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
  file that fails to load (a missing ``_static`` asset) fails the page too.

It prints one line per page, ``OK`` or ``FAIL`` with the reasons, and exits 1 if any page failed
(2 when it could not run at all). It talks to Chromium over the DevTools protocol through the
``websocket-client`` package.

    python tools/check_html.py                      # every page of _build/html
    python tools/check_html.py _build/html/conventions.html --screenshots /tmp/shots
"""

from __future__ import annotations

import argparse
import html.parser
import itertools
import json
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
from urllib.parse import urlparse

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
    "--window-size=1280,1600",
    "--remote-allow-origins=*",
)
#: Generated pages without book content.
SKIP_PAGES = {"genindex.html", "search.html", "py-modindex.html"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "devtools", "chrome-error"}


@dataclass
class PageResult:
    page: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self, base: Path | None = None) -> str:
        name = os.path.relpath(self.page, base) if base else str(self.page)
        if self.ok:
            return f"OK   {name}: {', '.join(self.notes)}"
        return f"FAIL {name}: {'; '.join(dict.fromkeys(self.problems))}"


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
        for domain in ("Page", "Network", "Runtime"):
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


def check_page(browser: Browser, page: Path, *, budget_s: float = 8.0,
               screenshot_dir: Path | None = None) -> PageResult:
    """Load ``page`` and collect every problem a reader would notice (see the module docstring)."""
    result = PageResult(page)
    for what in static_external_resources(page):
        result.problems.append(f"HTML loads an internet resource: {what}")

    tools = browser.tools
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
    tools.wait_for("__settle__", timeout=0.3)  # collect requests still in flight

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
    result.notes.append(f"{len(requests)} requests, none external" if not external
                        else f"{len(external)} external requests")

    if screenshot_dir is not None:
        import base64

        screenshot_dir.mkdir(parents=True, exist_ok=True)
        shot = tools.call("Page.captureScreenshot", {"format": "png"})
        (screenshot_dir / (page.stem + ".png")).write_bytes(base64.b64decode(shot["data"]))
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


def check_pages(pages: list[Path], *, chromium: str = DEFAULT_CHROMIUM, budget_s: float = 8.0,
                screenshot_dir: Path | None = None) -> list[PageResult]:
    with Browser(chromium) as browser:
        return [check_page(browser, p, budget_s=budget_s, screenshot_dir=screenshot_dir) for p in pages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path,
                        help="HTML files to check (default: every book page under --html-dir)")
    parser.add_argument("--html-dir", type=Path, default=Path("_build/html"))
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", DEFAULT_CHROMIUM))
    parser.add_argument("--budget", type=float, default=8.0,
                        help="seconds allowed for MathJax and images per page (default 8)")
    parser.add_argument("--screenshots", type=Path, default=None, metavar="DIR",
                        help="also save a PNG of each page here")
    args = parser.parse_args(argv)

    if not Path(args.chromium).exists() and not shutil.which(args.chromium):
        print(f"check_html: no Chromium at {args.chromium} (apt-get install chromium, or --chromium PATH)",
              file=sys.stderr)
        return 2
    pages = args.pages or default_pages(args.html_dir)
    missing = [p for p in pages if not p.is_file()]
    if missing or not pages:
        print(f"check_html: no such page(s): {', '.join(map(str, missing))}" if missing else
              f"check_html: no pages under {args.html_dir}; build the book first (make book)",
              file=sys.stderr)
        return 2
    base = args.html_dir if all(args.html_dir in p.parents for p in pages) else None
    try:
        results = check_pages(pages, chromium=args.chromium, budget_s=args.budget,
                              screenshot_dir=args.screenshots)
    except RuntimeError as err:
        print(f"check_html: {err}", file=sys.stderr)
        return 2
    for r in results:
        print(r.line(base), flush=True)
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} of {len(results)} pages OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
