"""Tests of the book machinery: the chapter runner and its tidy step, the reproducibility card,
the book configuration, the nbval sanitize rules and the headless-browser check."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from test_check_html import CHROMIUM, need_chromium, skip_or_fail
from test_check_html import load_check_html as _load_check_html

from stnlib import book

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
HTML_DIR = ROOT / "_build" / "html"
#: The built site (every file under _build/html) must stay under this many bytes.
SITE_BUDGET_BYTES = 10_000_000
#: Every chapter the book is meant to have, in reading order.
INTENDED_TOC = ["intro", "conventions", "protocol", "theory", "toy", "mnist", "svhn", "beyond", "conclusions",
                "references"]


# ---------------------------------------------------------------------------------------
# tidy step


def _executed_notebook(root: Path) -> nbformat.NotebookNode:
    """A small notebook shaped like papermill's output: bookkeeping, tqdm redraws, paths."""
    nb = new_notebook()
    nb.metadata.update({
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}},
        "papermill": {
            "parameters": {"profile": "smoke"}, "default_parameters": {},
            "start_time": "2026-11-25T17:49:03", "end_time": "2026-11-25T17:49:09", "duration": 6.1,
            "input_path": f"{root}/book/toy.ipynb", "output_path": f"{root}/book/toy.ipynb",
            "environment_variables": {}, "exception": None, "version": "2.7.0",
        },
    })
    params = new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]})
    injected = new_code_cell('# Parameters\nprofile = "smoke"\n',
                             metadata={"tags": ["injected-parameters"],
                                       "papermill": {"status": "completed", "duration": 0.01}})
    injected["id"] = "f3c9a0b2-random"  # papermill draws a new one every run
    loop = new_code_cell("for i in tqdm(range(3)): pass", metadata={
        "execution": {"iopub.execute_input": "2026-11-25T17:49:04.1Z"},
        "papermill": {"start_time": "2026-11-25T17:49:04", "duration": 0.5, "status": "completed"},
        "ExecuteTime": {"end_time": "2026-11-25T17:49:05"},
        "tags": ["hide-output"],
    }, outputs=[
        new_output("stream", name="stderr", text="\r  0%|          | 0/3 [00:00<?, ?it/s]"),
        new_output("stream", name="stderr", text="\r 67%|######6   | 2/3 [00:00<00:00, 9.1it/s]"),
        new_output("stream", name="stderr", text="\r100%|##########| 3/3 [00:00<00:00, 9.5it/s]\n"),
        new_output("stream", name="stdout", text=f"saved {root}/data/cache.pt\n"),
        new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2},
            "text/plain": "HBox(children=(FloatProgress(value=0.0),))",
        }),
    ])
    paths = new_code_cell("show()", outputs=[
        new_output("execute_result", execution_count=4, data={
            "text/plain": f"PosixPath('{root}/book/records')",
            "text/html": f"<code>{root}/book</code> next to <code>{root}line/x</code>",
            "image/png": "iVBORw0KGgo" + "A" * 20,
        }),
        new_output("error", ename="FileNotFoundError", evalue=f"No such file: '{root}/data/x'",
                   traceback=[f"File {root}/stnlib/data.py:3", "File ~/x.py"]),
    ])
    nb.cells = [new_markdown_cell("# Toy"), params, injected, loop, paths, new_code_cell("1 + 1")]
    for cell in nb.cells:
        cell.pop("id", None)  # as in an nbformat 4.4 notebook
    injected["id"] = "f3c9a0b2-random"
    nb.nbformat_minor = 4
    return nb


def test_tidy_coalesces_progress_bars(tmp_path):
    nb = book.tidy_notebook(_executed_notebook(tmp_path), root=tmp_path, home="/nonexistent-home")
    outputs = nb.cells[3].outputs
    streams = [o for o in outputs if o.output_type == "stream"]
    assert [o.name for o in streams] == ["stderr", "stdout"]
    assert streams[0].text == "100%|##########| 3/3 [00:00<00:00, 9.5it/s]\n"


def test_tidy_strips_volatile_metadata(tmp_path):
    nb = book.tidy_notebook(_executed_notebook(tmp_path), root=tmp_path, home="/nonexistent-home")
    assert "widgets" not in nb.metadata
    assert nb.metadata["papermill"] == {"parameters": {"profile": "smoke"}}
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        assert not {"execution", "papermill", "ExecuteTime"} & set(cell.metadata)
    assert nb.cells[3].metadata["tags"] == ["hide-output"]
    # The injected cell stays for papermill and nbval but is hidden in the HTML, like the parameters cell.
    assert nb.cells[2].metadata["tags"] == ["injected-parameters", "remove-cell"]
    widget = nb.cells[3].outputs[-1]
    assert set(widget.data) == {"text/plain"}  # the view is gone, the text fallback stays


def test_tidy_removes_absolute_paths(tmp_path):
    home = tmp_path / "home"
    root = home / "work" / "checkout"
    root.mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(root)
    nb = _executed_notebook(root)
    nb.cells[4].outputs[1].traceback.append(f"File {home}/other.py")
    # the runner may be handed a symlinked path while outputs hold the resolved one
    book.tidy_notebook(nb, root=link, home=home)
    text = nbformat.writes(nb)
    assert str(root) not in text and str(home) not in text
    assert nb.cells[3].outputs[1].text == "saved ./data/cache.pt\n"
    result = nb.cells[4].outputs[0].data
    assert result["text/plain"] == "PosixPath('./book/records')"
    # only whole path components are replaced: "<root>line" is another folder
    assert result["text/html"] == "<code>./book</code> next to <code>~/work/checkoutline/x</code>"
    assert result["image/png"].startswith("iVBORw0KGgo")
    error = nb.cells[4].outputs[1]
    assert error.evalue == "No such file: './data/x'"
    assert error.traceback == ["File ./stnlib/data.py:3", "File ~/x.py", "File ~/other.py"]


def test_tidy_gives_stable_ids(tmp_path):
    nb = book.tidy_notebook(_executed_notebook(tmp_path), root=tmp_path, home="/nonexistent-home")
    ids = [c.id for c in nb.cells]
    assert ids == ["cell-0", "cell-1", "injected-parameters", "cell-3", "cell-4", "cell-5"]
    assert nb.nbformat_minor >= 5
    nbformat.validate(nb)
    # idempotent, and existing ids survive (a new cell does not renumber the others)
    again = book.tidy_notebook(nbformat.reads(nbformat.writes(nb), as_version=4), root=tmp_path)
    assert [c.id for c in again.cells] == ids
    again.cells.insert(1, new_code_cell("x = 1"))
    again.cells[1].pop("id")
    again.cells.append(nbformat.from_dict(dict(again.cells[0])))  # a duplicate id
    book.tidy_notebook(again, root=tmp_path)
    new_ids = [c.id for c in again.cells]
    assert new_ids[0] == "cell-0" and new_ids[2:7] == ids[1:]
    assert len(set(new_ids)) == len(new_ids)


# ---------------------------------------------------------------------------------------
# running chapters


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    nb.cells = [new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]})]
    nb.cells += [new_code_cell(s) for s in sources]
    return nb


def _tiny_book(tmp_path: Path) -> Path:
    book_dir = tmp_path / "book"
    book_dir.mkdir()
    (book_dir / "intro.md").write_text("# Intro\n")
    (book_dir / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: good\n  - file: bad\n  - file: later\n")
    nbformat.write(_notebook("import os, pathlib\n"
                             "print(profile, fresh, os.environ['STNLIB_PROFILE'], pathlib.Path.cwd().name)"),
                   book_dir / "good.ipynb")
    nbformat.write(_notebook("x = 1", "y = x + 1\nraise ValueError(f'boom {y}')", "z = 3"),
                   book_dir / "bad.ipynb")
    nbformat.write(_notebook("print('never runs')"), book_dir / "later.ipynb")
    return book_dir


def test_chapter_selection(tmp_path):
    book_dir = _tiny_book(tmp_path)
    assert [p.name for p in book.chapter_notebooks(book_dir)] == ["good.ipynb", "bad.ipynb", "later.ipynb"]
    assert [p.name for p in book.chapter_notebooks(book_dir, ["later", "book/good.ipynb"])] == \
        ["good.ipynb", "later.ipynb"]
    with pytest.raises(ValueError, match="unknown chapter 'svhn'; chapters in the toc: good, bad, later"):
        book.chapter_notebooks(book_dir, ["svhn"])
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        book.run_chapters("fast", book_dir=book_dir)
    (book_dir / "later.ipynb").unlink()
    with pytest.raises(FileNotFoundError, match="lists 'later'"):
        book.chapter_notebooks(book_dir)


@pytest.mark.slow
def test_run_chapters_names_the_failing_cell(tmp_path):
    book_dir = _tiny_book(tmp_path)
    bad_before = (book_dir / "bad.ipynb").read_bytes()
    later_before = (book_dir / "later.ipynb").read_bytes()
    with pytest.raises(book.ChapterError) as info:
        book.run_chapters("smoke", kernel="python3", book_dir=book_dir)
    message = str(info.value)
    assert "chapter 'bad' (book/bad.ipynb) failed in cell 2 (0-based, In [4]) starting `y = x + 1`" in message
    assert "ValueError: boom 2" in message
    assert "book/bad.ipynb was left unchanged" in message and "_build/failed/bad.ipynb" in message
    assert info.value.cell_index == 2
    assert (book_dir / "bad.ipynb").read_bytes() == bad_before
    assert (book_dir / "later.ipynb").read_bytes() == later_before  # the run stopped
    failed = nbformat.read(tmp_path / "_build" / "failed" / "bad.ipynb", as_version=4)
    assert failed.metadata["papermill"]["exception"]

    good = nbformat.read(book_dir / "good.ipynb", as_version=4)
    assert good.cells[1].id == "injected-parameters"
    assert good.cells[2].outputs[0].text == "smoke False smoke book\n"
    assert good.metadata["papermill"] == {"parameters": {"profile": "smoke", "fresh": False}}
    assert good.metadata["kernelspec"]["name"] == "python3"
    assert str(tmp_path) not in (book_dir / "good.ipynb").read_text()
    assert not list(book_dir.glob(".*.tmp")) and not list(book_dir.glob("*.tmp"))


@pytest.mark.slow
def test_run_chapters_names_a_cell_that_times_out(tmp_path):
    book_dir = tmp_path / "book"
    book_dir.mkdir()
    (book_dir / "_toc.yml").write_text("format: jb-book\nroot: slow\n")
    nbformat.write(_notebook("x = 1", "import time\ntime.sleep(60)"), book_dir / "slow.ipynb")
    with pytest.raises(book.ChapterError) as info:
        book.run_chapters("smoke", kernel="python3", timeout=2, book_dir=book_dir)
    assert "chapter 'slow' (book/slow.ipynb) failed in cell 2 (0-based) starting `import time`" in str(info.value)
    assert "CellTimeoutError" in str(info.value)


def test_main_lists_chapters(tmp_path, monkeypatch, capsys):
    book_dir = _tiny_book(tmp_path)
    monkeypatch.chdir(book_dir)
    assert book.main(["--list"]) == 0
    assert capsys.readouterr().out.split() == ["good", "bad", "later"]
    assert book.main(["--chapters", "nope", "--list"]) == 2
    assert "unknown chapter 'nope'" in capsys.readouterr().err


def test_chapter_runs_are_each_chapters_runs_once():
    from stnlib.report.card import CHAPTER_RUNS, chapter_runs

    mnist = chapter_runs(["mnist"], "quick")
    assert {(s.experiment, s.model) for s in mnist} == {
        ("mnist-rot", m) for m in ("cnn", "stn-c0", "stn-c1", "stn-sl1", "stn-dl1")} | {
        ("mnist-trans", m) for m in ("cnn", "stn-c0", "stn-c1", "stn-sl1", "stn-dl1")} | {
        ("mnist-rot-adam", m) for m in ("stn-c0", "stn-c1", "stn-sl1")}
    assert len(mnist) == 13 * 3 == len(set(mnist))
    both = chapter_runs(["mnist", "beyond"], "quick")  # beyond adds only its two C4 models
    assert both[:len(mnist)] == mnist and {(s.model, s.seed) for s in both[len(mnist):]} == {
        (m, seed) for m in ("ecnn", "stn-ec1") for seed in (0, 1, 2)}
    assert chapter_runs(["theory", "toy", "conclusions", "nope"], "quick") == []
    assert set(CHAPTER_RUNS) == {"mnist", "svhn", "beyond"}


class _FakeLaunch:
    """Stands in for :func:`stnlib.launch.launch`: remembers the call, fails the runs it is told to."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, specs, launcher, *, resources, fresh, log, **kwargs):
        from stnlib.launch import Outcome, SweepResult

        self.calls.append((list(specs), launcher, resources.jobs, fresh))
        return SweepResult([Outcome(s, error=f"{s} exploded") if s.model in self.fail
                            else Outcome(s, record={}) for s in specs])


def _book_with_svhn(tmp_path: Path) -> Path:
    """A tiny book whose chapter 'svhn' trains (it is in CHAPTER_RUNS) and whose 'good' does not."""
    book_dir = tmp_path / "book"
    book_dir.mkdir()
    (book_dir / "_toc.yml").write_text("format: jb-book\nroot: svhn\nchapters:\n  - file: good\n")
    show = "print(profile, fresh)"
    nbformat.write(_notebook(show), book_dir / "svhn.ipynb")
    nbformat.write(_notebook(show), book_dir / "good.ipynb")
    return book_dir


@pytest.mark.slow
def test_fresh_trains_the_chapters_runs_side_by_side_first(tmp_path, monkeypatch):
    from stnlib import launch
    from stnlib.report.card import chapter_runs

    book_dir = _book_with_svhn(tmp_path)
    fake = _FakeLaunch()
    monkeypatch.setattr(launch, "launch", fake)
    book.run_chapters("smoke", fresh=True, jobs=2, kernel="python3", book_dir=book_dir)
    [(specs, launcher, jobs, fresh)] = fake.calls
    assert specs == chapter_runs(["svhn"], "smoke") and launcher == "local" and jobs == 2 and fresh
    # The chapter whose runs were just retrained reads them; the other keeps fresh=True.
    out = {name: nbformat.read(book_dir / f"{name}.ipynb", as_version=4).cells[2].outputs[0].text
           for name in ("svhn", "good")}
    assert out == {"svhn": "smoke False\n", "good": "smoke True\n"}

    book.run_chapters("smoke", fresh=True, jobs=1, kernel="python3", book_dir=book_dir, chapters=["svhn"])
    assert fake.calls[-1][1:] == ("inline", 1, True)


def test_fresh_stops_before_the_chapters_when_a_run_fails(tmp_path, monkeypatch):
    from stnlib import launch

    book_dir = _book_with_svhn(tmp_path)
    before = (book_dir / "svhn.ipynb").read_bytes()
    monkeypatch.setattr(launch, "launch", _FakeLaunch(fail={"stn-c0"}))
    with pytest.raises(book.TrainingError, match=r"1 of 11 run\(s\) failed; the chapters were not run:\n"
                                                  r"svhn/stn-c0 \(smoke, seed 0\) exploded"):
        book.run_chapters("smoke", fresh=True, jobs=2, kernel="python3", book_dir=book_dir)
    assert (book_dir / "svhn.ipynb").read_bytes() == before
    with pytest.raises(ValueError, match="jobs must be at least 1, not 0"):
        book.train_chapter_runs("smoke", ["svhn"], jobs=0)
    monkeypatch.setattr(launch, "launch", _FakeLaunch(fail={"stn-c0"}))
    assert book.main(["--fresh", "1", "--jobs", "2", "--kernel", "python3", "--chapters", "svhn"]) in (1, 2)


# ---------------------------------------------------------------------------------------
# book configuration


def test_toc_lists_only_existing_files_in_reading_order():
    docs = book.toc_documents(BOOK)  # raises if a listed file is missing
    names = [p.stem for p in docs]
    assert names[0] == "intro" and names[-1] == "references"
    assert names == [n for n in INTENDED_TOC if n in names], "toc order differs from the intended one"
    assert {"intro", "conventions", "references"} <= set(names)


def test_protocol_page_states_the_full_profiles_settings():
    """The Protocol page is prose; the numbers it states must be the ones the `full` profile trains with."""
    from stnlib.profiles import get_profile, settings_for

    text = (BOOK / "protocol.md").read_text()
    s = settings_for("full", "mnist-rot")
    assert settings_for("full", "mnist-trans") == s
    assert (s.optimizer, s.momentum, s.weight_decay, s.loc_lr_multiplier, s.lr_divisor) == ("sgd", 0.0, 0.0, 1.0, 10)
    assert f"batches\nof {s.batch_size} for {s.iterations:,} iterations" in text
    assert f"learning rate {s.lr:g} divided by {s.lr_divisor:g} after {s.lr_milestones[0]:,}\nand {s.lr_milestones[1]:,}" in text
    assert "momentum 0 and no weight decay" in text and "(multiplier 1, the code's default)" in text
    assert f"from {['no', 'one', 'two', 'three'][len(get_profile('full').seeds)]} seeds" in text
    assert s.eval_passes == 10 and "ten passes of the test set" in text


def _sphinx_config() -> dict:
    """The Sphinx configuration Jupyter Book derives from _config.yml for `jupyter-book build book`."""
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(user_yaml=ROOT / "_config.yml", sourcedir=BOOK,
                                 cli_config={"latex_individualpages": False})
    return config


def test_config_keeps_the_book_offline_and_downloadable():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    sphinx = config["sphinx"]["config"]
    assert sphinx["html_sourcelink_suffix"] == ""
    assert sphinx["html_theme_options"]["use_download_button"] is True
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["repository"]["path_to_book"] == "book" and config["repository"]["branch"] == "main"
    assert set(config["parse"]["myst_enable_extensions"]) >= {"dollarmath", "amsmath", "colon_fence", "deflist"}
    bib = (BOOK / "references.bib").read_text()
    pages = sorted(BOOK.glob("*.md")) + sorted(BOOK.glob("*.ipynb"))
    for page in pages:
        for key in re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", page.read_text()):
            for k in key.split(","):
                assert f"{{{k.strip()}," in bib, f"{page.name} cites {k} which references.bib lacks"


def test_config_serves_vendored_mathjax_and_no_thebe():
    final = _sphinx_config()
    extensions = final["extensions"]
    # sphinx_thebe wrote `const THEBE_JS_URL` into every page twice (a SyntaxError on each page)
    assert "sphinx_thebe" not in extensions
    assert "sphinx-mathjax-offline" not in extensions  # it copied the whole 24 MB MathJax tree
    assert {"offline_site", "sphinxcontrib.bibtex", "myst_nb", "sphinx_book_theme"} <= set(extensions)
    assert len(extensions) == len(set(extensions))
    mathjax = BOOK / "_static" / final["mathjax_path"]
    assert final["mathjax_path"] == "mathjax/tex-chtml-full.js" and mathjax.is_file()
    assert (BOOK / "_static" / "mathjax" / "LICENSE").is_file()
    assert sorted(p.name for p in (BOOK / "_static/mathjax/output/chtml/fonts/woff-v2").glob("*.woff"))
    assert "custom.css" in final["html_css_files"]
    assert final["html_context"]["default_mode"] == "auto"


def _offline_site():
    spec = importlib.util.spec_from_file_location("offline_site", BOOK / "_ext" / "offline_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_offline_site_prunes_what_no_page_loads(tmp_path):
    """build-finished on a made-up site: maps, catalogs, TTF twins and fontawesome.js go, pages
    lose the script tag, everything a page loads stays; a page the pattern misses fails the build."""
    from types import SimpleNamespace

    from sphinx.errors import ExtensionError

    out = tmp_path / "html"
    static = out / "_static"
    files = {
        "scripts/bootstrap.js": "var b;\n//# sourceMappingURL=bootstrap.js.map", "scripts/bootstrap.js.map": "{}",
        "styles/theme.css": "a{}\n/*# sourceMappingURL=theme.css.map*/", "styles/theme.css.map": "{}",
        "locales/de/LC_MESSAGES/booktheme.mo": "x", "webfonts/fa.woff2": "w", "webfonts/fa.ttf": "t",
        "webfonts/only.ttf": "t", "scripts/fontawesome.js": "fa", "scripts/fontawesome.js.LICENSE.txt": "l",
    }
    for name, text in files.items():
        (static / name).parent.mkdir(parents=True, exist_ok=True)
        (static / name).write_text(text)
    tag = '    <script defer src="{}_static/scripts/fontawesome.js?digest=55c2"></script>\n'
    (out / "sub").mkdir()
    (out / "a.html").write_text("<head>\n" + tag.format("") + '<script src="_static/x.js"></script></head>')
    (out / "sub" / "b.html").write_text("<head>\n" + tag.format("../") + "</head>")
    app = SimpleNamespace(outdir=str(out), builder=SimpleNamespace(format="html"))
    _offline_site().prune(app, None)
    left = sorted(p.relative_to(static).as_posix() for p in static.rglob("*") if p.is_file())
    assert left == ["scripts/bootstrap.js", "styles/theme.css", "webfonts/fa.woff2", "webfonts/only.ttf"]
    assert (static / "scripts/bootstrap.js").read_text() == "var b;"
    assert (static / "styles/theme.css").read_text() == "a{}"
    assert (out / "a.html").read_text() == '<head>\n<script src="_static/x.js"></script></head>'
    assert (out / "sub" / "b.html").read_text() == "<head>\n</head>"

    (static / "scripts/fontawesome.js").write_text("fa")
    (out / "a.html").write_text("<script src='_static/scripts/fontawesome.js'></script>")  # other quotes
    with pytest.raises(ExtensionError, match="1 page\\(s\\) still load scripts/fontawesome.js .* a.html"):
        _offline_site().prune(app, None)


def test_offline_site_repacks_figure_pngs_losslessly(tmp_path):
    from PIL import Image, ImageChops, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("stnlib:width_in", "6.4")
    info.add_text("stnlib:min_font_pt", "8.0")
    few = Image.new("RGBA", (300, 200), (255, 255, 255, 255))  # a plot: few colours, opaque
    few.paste((31, 119, 180, 255), (20, 20, 280, 40))
    many = Image.effect_noise((300, 200), 60).convert("RGBA")  # more than 256 colours
    clear = Image.new("RGBA", (300, 200), (0, 0, 0, 0))  # transparency must survive
    clear.paste((200, 0, 0, 128), (10, 10, 100, 100))
    for name, im in (("few", few), ("many", many), ("clear", clear)):
        path = tmp_path / f"{name}.png"
        im.save(path, "PNG", pnginfo=info, dpi=(100, 100), compress_level=1)
        before = path.stat().st_size
        saved = _offline_site()._repack_png(path)
        assert path.stat().st_size == before - saved
        with Image.open(path) as after:
            assert ImageChops.difference(after.convert("RGBA"), im).getbbox() is None, name
            assert after.text == {"stnlib:width_in": "6.4", "stnlib:min_font_pt": "8.0"}
            assert round(after.info["dpi"][0]) == 100
    assert Image.open(tmp_path / "few.png").mode == "P"


def _github_pages_url(repo_url: str) -> str:
    """https://github.com/OWNER/NAME -> https://OWNER.github.io/NAME/ (where the book is published)."""
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)/?", repo_url)
    assert m, f"repository.url {repo_url!r} is not https://github.com/OWNER/NAME"
    return f"https://{m.group(1)}.github.io/{m.group(2)}/"


def _install_cell_urls(notebook: Path) -> list[tuple[int, str]]:
    """(cell index, repository URL) for every code cell that pip-installs from git+https://."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for i, cell in enumerate(cells):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] != "code" or "pip install" not in source:
            continue
        for url in re.findall(r"git\+(https://[^\s\"'@#]+)", source):
            found.append((i, re.sub(r"(\.git)?/?$", "", url)))
    return found


def repository_url_mismatches(root: Path) -> list[str]:
    """Every place that names the repository with another URL than _config.yml's repository.url."""
    url = yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    wrong = []
    if cff.get("repository-code", "").rstrip("/") != url:
        wrong.append(f"CITATION.cff repository-code is {cff.get('repository-code')!r}, not {url!r}")
    if cff.get("url") not in (url, _github_pages_url(url)):
        wrong.append(f"CITATION.cff url is {cff.get('url')!r}, not {url!r} or its Pages site "
                     f"{_github_pages_url(url)!r}")
    for nb in book.chapter_notebooks(root / "book"):
        for i, other in _install_cell_urls(nb):
            if other != url:
                wrong.append(f"{nb.relative_to(root)} cell {i} installs from {other!r}, not {url!r}")
    return wrong


def test_repository_url_is_one_setting():
    assert repository_url_mismatches(ROOT) == []
    assert any(_install_cell_urls(nb) for nb in book.chapter_notebooks(BOOK)), "no install cell found"


def test_repository_url_check_can_fail(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/a/b\n")
    (tmp_path / "CITATION.cff").write_text(
        "repository-code: https://github.com/old/b\nurl: https://a.github.io/b/\n")
    book_dir = tmp_path / "book"
    book_dir.mkdir()
    (book_dir / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: ch\n")
    (book_dir / "intro.md").write_text("# Intro\n")
    nb = new_notebook(cells=[
        new_code_cell('%pip install -q "stnlib @ git+https://github.com/a/b.git@main"'),
        new_code_cell("%pip install git+https://github.com/fork/b"),
        new_code_cell("%pip install numpy  # not from git")])
    nbformat.write(nb, book_dir / "ch.ipynb")
    assert repository_url_mismatches(tmp_path) == [
        "CITATION.cff repository-code is 'https://github.com/old/b', not 'https://github.com/a/b'",
        "book/ch.ipynb cell 1 installs from 'https://github.com/fork/b', not 'https://github.com/a/b'",
    ]


# ---------------------------------------------------------------------------------------
# nbval sanitize rules


def test_sanitize_rules():
    from nbval.plugin import get_sanitize_patterns

    cfg = (ROOT / "tests" / "nbval_sanitize.cfg").read_text()
    rules = get_sanitize_patterns(cfg)
    assert len(rules) == cfg.count("\n[")  # every section parsed (nbval is strict about spacing)

    def sanitize(s: str) -> str:
        for pattern, replacement in rules:
            s = re.sub(pattern, replacement, s)
        return s

    cases = {
        "train: 100%|██████████| 10/10 [00:01<00:00,  9.87it/s]": "train: PCT|BAR| 10/10 [TIME]",
        "eval:  40%|████      | 4/10 [00:00<?, ?it/s]": "eval:  PCT|BAR| 4/10 [TIME]",
        "elapsed: 12.34 s, then 3 min 05 s": "elapsed: TIME, then TIME TIME",
        "at 1234.5 img/s": "at RATE",
        "Wall time: 1.2 s": "Wall time: TIME",
        "<Foo object at 0x7f3a2b1c90>": "<Foo object at 0xADDRESS>",
        "run 2026-11-25T17:49:03+00:00 (2026-11-25)": "run DATE (DATE)",
        "git 1a2b3c4d5e6f + 0123456789abcdef0123456789abcdef01234567": "git GITHASH + GITHASH",
        "error 0.012345678912 and 0.25": "error 0.012345 and 0.25",
        "took 0:01:02": "took H:MM:SS",
        "12 seeds, 3 samples, 1234567 images, deadbeef": "12 seeds, 3 samples, 1234567 images, deadbeef",
        "saved /tmp/tmpab12cd/x.json": "saved /tmp/TMP",
    }
    for raw, expected in cases.items():
        assert sanitize(raw) == expected, raw


# ---------------------------------------------------------------------------------------
# browser check


def test_check_html_static_and_url_rules(tmp_path):
    check_html = _load_check_html()
    assert not check_html.is_external("_static/mathjax/tex-chtml.js")
    assert not check_html.is_external("file:///x/y.png")
    assert not check_html.is_external("data:image/png;base64,AAAA")
    assert not check_html.is_external("http://127.0.0.1:8000/x.js")
    assert check_html.is_external("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js")
    assert check_html.is_external("//fonts.googleapis.com/css")
    page = tmp_path / "p.html"
    page.write_text(
        '<html><head><script src="_static/a.js"></script>'
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
        '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=X">'
        '<style>@font-face { src: url("https://x.org/f.woff2") }</style></head>'
        '<body><a href="https://github.com/stn-alignment/stn-alignment">a link is fine</a>'
        '<script>const THEBE_JS_URL = "https://unpkg.com/thebe";</script>'
        '<img src="https://example.org/i.png"></body></html>')
    found = check_html.static_external_resources(page)
    assert found == [
        "script https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js",
        "link rel=stylesheet //fonts.googleapis.com/css?family=X",
        "<style> https://x.org/f.woff2",
        "img https://example.org/i.png",
    ]


def _need_built_book() -> None:
    # `make test` runs before `make book`; .ci/run sets STNLIB_REQUIRE_BUILT_BOOK=1 after it.
    if not (HTML_DIR / "conventions.html").exists():
        skip_or_fail("no built book in _build/html (run `make book` first)", unless="STNLIB_REQUIRE_BUILT_BOOK")


def test_built_book_serves_the_notebooks():
    """The download button hands out the real .ipynb (not .ipynb.txt); needs a built book."""
    built = [p for p in book.chapter_notebooks(BOOK) if (HTML_DIR / f"{p.stem}.html").exists()]
    if not built:
        skip_or_fail("no chapter notebook built in _build/html (run `make book` first)",
                     unless="STNLIB_REQUIRE_BUILT_BOOK")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    for nb in built:
        page = (HTML_DIR / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert (HTML_DIR / "_sources" / nb.name).is_file()
        assert f'href="_sources/{nb.name}"' in page
        assert ".ipynb.txt" not in page
        assert (f"https://colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/"
                f"book/{nb.name}") in page


def test_built_book_is_light_and_self_contained():
    """Under the size budget, MathJax served from the one vendored component, nothing that only
    a developer's tools load (source maps), no Thebe leftovers."""
    _need_built_book()
    files = [p for p in HTML_DIR.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    biggest = sorted(files, key=lambda p: p.stat().st_size)[-3:]
    assert total < SITE_BUDGET_BYTES, (
        f"_build/html is {total / 1e6:.2f} MB, over the {SITE_BUDGET_BYTES / 1e6:.0f} MB budget; largest: "
        + ", ".join(f"{p.relative_to(HTML_DIR)} {p.stat().st_size / 1e3:.0f} kB" for p in reversed(biggest)))
    assert not [p for p in files if p.suffix == ".map"]
    mathjax = {p.relative_to(HTML_DIR / "_static" / "mathjax").as_posix()
               for p in (HTML_DIR / "_static" / "mathjax").rglob("*") if p.is_file()}
    vendored = {p.relative_to(BOOK / "_static" / "mathjax").as_posix()
                for p in (BOOK / "_static" / "mathjax").rglob("*") if p.is_file()}
    assert mathjax == vendored  # no stale MathJax tree from an earlier build
    assert not (HTML_DIR / "_static" / "scripts" / "fontawesome.js").exists()
    for page in HTML_DIR.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "THEBE_JS_URL" not in text and "fontawesome.js" not in text, page.name
    theory = (HTML_DIR / "theory.html").read_text(encoding="utf-8")
    assert '<script defer="defer" src="_static/mathjax/tex-chtml-full.js' in theory
    assert theory.count("tex-chtml-full.js") == 1


@pytest.mark.browser
def test_built_book_renders_offline_in_chromium():
    """Every page: math typeset, images decode, no internet request, no console error, every figure
    carrying its drawn size and smallest font, and that text readable at 1400 and 420 px; the intro
    opens with the results at a glance."""
    need_chromium()
    _need_built_book()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "check_html.py"), "--html-dir", str(HTML_DIR),
                           "--require-figure-metadata"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for page in ("intro", "conventions", "protocol", "theory", "toy", "mnist", "svhn", "beyond", "conclusions",
                 "references"):
        assert f"OK   {page}.html" in proc.stdout
    intro = (HTML_DIR / "intro.html").read_text(encoding="utf-8")
    assert "Results at a glance" in intro and 'class="glance-table"' in intro
    # In the article itself: the page's table of contents, earlier in the HTML, lists the headings too.
    article = intro[intro.index('<article class="bd-article"'):]
    assert article.index("Results at a glance") < article.index("The claim in one paragraph")


@pytest.mark.browser
def test_browser_check_can_fail(tmp_path):
    """A page with CDN MathJax, a missing image and a console error must fail (the check is
    not a rubber stamp); tests/test_check_html.py plants a bad page for each further rule."""
    need_chromium()
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><head><script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
        '</head><body><p>Inline <span class="math notranslate nohighlight">\\(x^2\\)</span>.</p>'
        '<img src="missing.png" alt="gone"><script>console.error("planted")</script></body></html>')
    check_html = _load_check_html()
    (result,) = check_html.check_pages([page], chromium=CHROMIUM, budget_s=2.0)
    problems = " | ".join(result.problems)
    assert not result.ok
    assert "MathJax did not load" in problems
    assert "1 of 1 formulas not typeset" in problems
    assert "raw TeX in the text" in problems
    assert "broken image missing.png" in problems
    assert "cdn.jsdelivr.net" in problems
    assert "console.error: planted" in problems
