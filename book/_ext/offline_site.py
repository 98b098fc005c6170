"""Keep the built book light and self-contained: vendored MathJax, no never-loaded static files.

Registered in ``_config.yml`` (``sphinx: local_extensions``). It does two things.

* **MathJax from ``book/_static/mathjax/``** (see ``tools/vendor_mathjax.sh``): ``mathjax_path``
  must name a file there, checked when the configuration is read. Jupyter Book adds every
  ``*.js`` under ``book/_static`` to ``html_js_files``; for MathJax that would load it a second
  time next to ``sphinx.ext.mathjax``'s own deferred tag, so those entries are dropped again.
* **Pruning after an HTML build** (``build-finished``), of files no page loads:

  - source maps (``*.map``) of the theme's scripts and styles, and the ``sourceMappingURL``
    comments that point at them (only a developer's DevTools ever fetches a map);
  - ``_static/locales/``: sphinx-book-theme's translation catalogs, used at build time only;
  - TrueType copies of web fonts whose WOFF2 twin sits next to them: the theme's CSS lists the
    WOFF2 first, and every browser that runs the theme's scripts reads WOFF2;
  - the theme's ``scripts/fontawesome.js`` (1.5 MB on every page) and its ``<script>`` tag: it
    only swaps the icon ``<i>`` elements for SVGs, while the theme's CSS already draws the same
    icons from the Font Awesome web fonts. After the tag is removed from a page, no page may
    still name the script; a theme whose markup no longer matches fails the build instead of
    shipping a page that requests a missing file.

  It also re-encodes the figure PNGs under ``_images/`` losslessly (an opaque RGBA image as RGB,
  one of at most 256 colours as a palette image, zlib at its best), about 15 % smaller. A new
  file is kept only when it decodes to the same pixels and is smaller; its text chunks
  (``stnlib:width_in``, ``stnlib:min_font_pt``, ...) and resolution are carried over.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_DIR = "mathjax"  # under html_static_path's book/_static
FONTAWESOME_JS = "scripts/fontawesome.js"
_FONTAWESOME_TAG = re.compile(
    r'[ \t]*<script\b[^>]*\bsrc="(?:\.\./)*_static/scripts/fontawesome\.js(?:\?[^"]*)?"[^>]*>\s*</script>[ \t]*\n?')
_SOURCEMAP_COMMENT = re.compile(r"\n?(?://[#@] sourceMappingURL=[^\n]*|/\*[#@] sourceMappingURL=[^*]*\*/)\s*$")


def check_mathjax(app: Sphinx, config: Config) -> None:
    static = Path(app.srcdir) / "_static"
    path = str(config.mathjax_path or "")
    prefix = MATHJAX_DIR + "/"
    if not path.startswith(prefix) or not (static / path).is_file():
        found = sorted(p.relative_to(static).as_posix() for p in (static / MATHJAX_DIR).glob("*.js"))
        raise ExtensionError(
            f"offline_site: mathjax_path is {path!r}; it must name a vendored MathJax file under "
            f"book/_static/{MATHJAX_DIR}/ (found: {', '.join(found) or 'none; run tools/vendor_mathjax.sh'})")
    config.html_js_files = [entry for entry in config.html_js_files
                            if not _js_name(entry).startswith(prefix)]


def _js_name(entry) -> str:
    return entry[0] if isinstance(entry, (tuple, list)) else str(entry)


def prune(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    static = out / "_static"
    removed = 0

    for source_map in static.rglob("*.map"):
        removed += _unlink(source_map)
        owner = source_map.with_suffix("")  # x.js.map -> x.js
        if owner.is_file() and owner.suffix in (".js", ".css"):
            text = owner.read_text(encoding="utf-8")
            stripped = _SOURCEMAP_COMMENT.sub("", text)
            if stripped != text:
                owner.write_text(stripped, encoding="utf-8")

    locales = static / "locales"
    if locales.is_dir():
        removed += sum(f.stat().st_size for f in locales.rglob("*") if f.is_file())
        shutil.rmtree(locales)

    for ttf in static.rglob("*.ttf"):
        if ttf.with_suffix(".woff2").is_file():
            removed += _unlink(ttf)

    script = static / FONTAWESOME_JS
    if script.is_file():
        pages = [p for p in out.rglob("*.html") if not p.relative_to(out).parts[0].startswith("_")]
        for page in pages:
            text = page.read_text(encoding="utf-8")
            if "fontawesome.js" in text:
                page.write_text(_FONTAWESOME_TAG.sub("", text), encoding="utf-8")
        still = [p.relative_to(out).as_posix() for p in pages
                 if "_static/scripts/fontawesome.js" in p.read_text(encoding="utf-8")]
        if still:
            raise ExtensionError(
                f"offline_site: {len(still)} page(s) still load {FONTAWESOME_JS} after its <script> tag "
                f"was removed (the theme's markup changed?), e.g. {still[0]}; update _FONTAWESOME_TAG")
        removed += _unlink(script)
        removed += _unlink(script.with_name(script.name + ".LICENSE.txt"))
    repacked = sum(_repack_png(png) for png in sorted((out / "_images").glob("*.png")))
    logger.info(f"offline_site: removed {removed / 1e6:.1f} MB of static files no page loads, "
                f"{repacked / 1e6:.1f} MB from the figure PNGs")


def _repack_png(path: Path) -> int:
    """Re-encode one PNG losslessly; returns the bytes saved (0 when the file is kept as it was)."""
    from PIL import Image, ImageChops, PngImagePlugin

    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        text, dpi = dict(getattr(im, "text", None) or {}), im.info.get("dpi")
        pixels = im.convert("RGBA")
    packed = pixels
    if pixels.getchannel("A").getextrema() == (255, 255):
        packed = pixels.convert("RGB")
        colors = packed.getcolors(256)  # None when there are more
        if colors:
            palette = [v for _, rgb in colors for v in rgb]
            holder = Image.new("P", (1, 1))
            holder.putpalette(palette + [0] * (768 - len(palette)))
            packed = packed.quantize(palette=holder, dither=Image.Dither.NONE)
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    packed.save(buf, "PNG", optimize=True, pnginfo=info, **({"dpi": dpi} if dpi else {}))
    new = buf.getvalue()
    if len(new) >= len(data):
        return 0
    with Image.open(io.BytesIO(new)) as check:
        if ImageChops.difference(check.convert("RGBA"), pixels).getbbox() is not None:
            return 0  # not lossless after all: keep the original
    path.write_bytes(new)
    return len(data) - len(new)


def _unlink(path: Path) -> int:
    if not path.is_file():
        return 0
    size = path.stat().st_size
    path.unlink()
    return size


def setup(app: Sphinx) -> dict:
    # After jupyter-book's config-inited work has filled html_js_files.
    app.connect("config-inited", check_mathjax, priority=900)
    app.connect("build-finished", prune)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
