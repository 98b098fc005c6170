"""The chapter runner of the executable book.

``python -m stnlib book --profile quick`` executes every chapter notebook listed in
``book/_toc.yml`` with papermill (in table-of-contents order, each in a fresh kernel, with the
notebook's folder as working directory), tidies the result so that committed notebooks diff
cleanly, and writes it back in place. ``jupyter-book build`` then renders the stored outputs
(``execute_notebooks: "off"``), so the book shows exactly what the runner produced.

A failing chapter stops the run with a :class:`ChapterError` that names the chapter and the
failing cell; the notebook in ``book/`` is left untouched and the executed copy is kept under
``_build/failed/`` for inspection.

Every chapter opens with the reproducibility card of :mod:`stnlib.report.card`, read from the
chapter's result records rather than typed by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from stnlib.report.display import format_duration

PROFILES = ("smoke", "quick", "full")
#: The id papermill's injected-parameters cell gets, instead of a fresh random one per run.
INJECTED_ID = "injected-parameters"
#: Per-cell metadata that only records when or how long a cell ran.
_VOLATILE_CELL_METADATA = ("execution", "papermill", "ExecuteTime")
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ChapterError(RuntimeError):
    """A chapter notebook failed to execute; the message names the chapter and the cell."""

    def __init__(self, message: str, *, chapter: str, cell_index: int | None = None,
                 failed_path: Path | None = None):
        super().__init__(message)
        self.chapter = chapter
        self.cell_index = cell_index
        self.failed_path = failed_path


# ---------------------------------------------------------------------------------------
# finding the chapters


def find_book_dir(start: str | os.PathLike | None = None) -> Path:
    """The ``book/`` folder: searched from ``start`` (default: the working directory) upwards.

    Falls back to the folder next to the installed package (an editable install). Raises
    ``FileNotFoundError`` when no ``book/_toc.yml`` is found.
    """
    here = Path(start or os.getcwd()).resolve()
    candidates = [d / "book" for d in (here, *here.parents)]
    if here.name == "book":
        candidates.insert(0, here)
    candidates.append(Path(__file__).resolve().parent.parent / "book")
    for cand in candidates:
        if (cand / "_toc.yml").is_file():
            return cand
    raise FileNotFoundError(
        f"no book/_toc.yml found above {here}; run from the repository root "
        "(a clone of https://github.com/stn-alignment/stn-alignment)"
    )


def _toc_files(entry: Any) -> Iterator[str]:
    """Every ``file:`` of a jb-book toc entry, depth first, in order."""
    if isinstance(entry, Mapping):
        if "file" in entry:
            yield str(entry["file"])
        for key in ("parts", "chapters", "sections"):
            for child in entry.get(key) or ():
                yield from _toc_files(child)
    elif isinstance(entry, list):
        for child in entry:
            yield from _toc_files(child)


def toc_documents(book_dir: str | os.PathLike) -> list[Path]:
    """The source files listed in ``_toc.yml`` (root first), resolved to existing paths.

    A toc entry names a file without its suffix; the first of ``.ipynb``, ``.md`` that exists
    is used. A listed file that does not exist raises ``FileNotFoundError``.
    """
    import yaml

    book_dir = Path(book_dir)
    toc_path = book_dir / "_toc.yml"
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    if not isinstance(toc, Mapping) or "root" not in toc:
        raise ValueError(f"{toc_path}: not a jb-book table of contents (no 'root:' entry)")
    names = [str(toc["root"]), *_toc_files({k: v for k, v in toc.items() if k != "root"})]
    docs = []
    for name in names:
        path = book_dir / name
        if path.suffix in (".ipynb", ".md") and path.is_file():
            docs.append(path)
            continue
        for suffix in (".ipynb", ".md"):
            if path.with_suffix(suffix).is_file():
                docs.append(path.with_suffix(suffix))
                break
        else:
            raise FileNotFoundError(f"{toc_path} lists {name!r}, but no {name}.ipynb or {name}.md exists")
    return docs


def chapter_notebooks(book_dir: str | os.PathLike, chapters: Iterable[str] | None = None) -> list[Path]:
    """The chapter notebooks in toc order, optionally restricted to ``chapters``.

    ``chapters`` may name a chapter as ``toy``, ``toy.ipynb`` or ``book/toy.ipynb``; an unknown
    name raises ``ValueError`` listing the valid ones.
    """
    notebooks = [p for p in toc_documents(book_dir) if p.suffix == ".ipynb"]
    if chapters is None:
        return notebooks
    by_name = {p.stem: p for p in notebooks}
    chosen = []
    for name in chapters:
        stem = Path(name).stem
        if stem not in by_name:
            raise ValueError(
                f"unknown chapter {name!r}; chapters in the toc: {', '.join(by_name) or '(none)'}"
            )
        chosen.append(by_name[stem])
    wanted = set(chosen)
    return [p for p in notebooks if p in wanted]  # keep toc order whatever order was asked


# ---------------------------------------------------------------------------------------
# tidying executed notebooks


def _path_patterns(root: str | os.PathLike | None, home: str | os.PathLike | None) -> list[tuple[re.Pattern, str]]:
    """Regexes replacing the checkout root with ``.`` and the home folder with ``~``.

    Both the given and the symlink-resolved spelling are replaced; longer paths first, so a
    checkout inside the home folder becomes ``./…`` rather than ``~/…``. A path only matches
    as a whole component (``/repo`` does not touch ``/repository``).
    """
    pairs: dict[str, str] = {}
    for path, repl in ((root, "."), (home, "~")):
        if path is None:
            continue
        for spelling in {str(path), os.path.realpath(path)}:
            spelling = spelling.rstrip("/")
            if len(spelling) > 1 and spelling not in pairs:
                pairs[spelling] = repl
    ordered = sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True)
    return [(re.compile(r"(?<![\w.-])" + re.escape(p) + r"(?![\w.-])"), r) for p, r in ordered]


def _scrub(value: Any, patterns: Sequence[tuple[re.Pattern, str]]) -> Any:
    if isinstance(value, str):
        for pattern, repl in patterns:
            value = pattern.sub(repl, value)
        return value
    if isinstance(value, list):
        return [_scrub(v, patterns) for v in value]
    return value


def _is_text_mime(mime: str) -> bool:
    return mime.startswith("text/") or mime in ("application/javascript", "application/x-latex")


def tidy_notebook(nb: Any, *, root: str | os.PathLike | None = None,
                  home: str | os.PathLike | None = None) -> Any:
    """Make an executed notebook stable under re-execution; modifies ``nb`` in place and returns it.

    * consecutive stream outputs are joined and carriage-return redraws collapsed, so a tqdm
      bar leaves its final line only (nbconvert's ``CoalesceStreamsPreprocessor``);
    * timestamps and run bookkeeping go: per-cell ``execution``/``papermill``/``ExecuteTime``
      metadata, notebook ``widgets`` state and every ``papermill`` key except ``parameters``;
      widget views are dropped from outputs (their text fallback stays);
    * cell ids are stable: existing valid ids are kept, missing or duplicate ones become
      ``cell-<index>``, and papermill's injected cell is ``injected-parameters``;
    * absolute paths of the checkout (``root``) and of ``home`` in outputs become ``.`` and ``~``
      (``home`` defaults to the current user's home folder).
    """
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    CoalesceStreamsPreprocessor().preprocess(nb, {})

    meta = nb.metadata
    meta.pop("widgets", None)
    if "papermill" in meta:
        params = meta["papermill"].get("parameters")
        meta.pop("papermill")
        if params is not None:
            meta["papermill"] = {"parameters": params}

    nb.nbformat = 4
    nb.nbformat_minor = max(int(nb.get("nbformat_minor", 0)), 5)  # ids exist from 4.5 on

    # Ids: keep every valid, first-seen id, then name the rest after their index, avoiding
    # all kept ids, so that inserting a cell never renames the cells around it.
    ids: list[str | None] = []
    used: set[str] = set()
    for cell in nb.cells:
        cell_id = cell.get("id")
        if INJECTED_ID in cell.metadata.get("tags", ()):
            cell_id = INJECTED_ID
            # The parameters papermill injects are plumbing: kept for papermill and nbval, hidden in the book.
            if "remove-cell" not in cell.metadata["tags"]:
                cell.metadata["tags"] = [*cell.metadata["tags"], "remove-cell"]
        elif not (isinstance(cell_id, str) and _CELL_ID.match(cell_id)) or cell_id in used \
                or cell_id == INJECTED_ID:
            cell_id = None
        ids.append(cell_id)
        if cell_id is not None:
            used.add(cell_id)
    for index, cell in enumerate(nb.cells):
        cell_id = ids[index]
        if cell_id is None:
            cell_id, k = f"cell-{index}", 0
            while cell_id in used:
                k += 1
                cell_id = f"cell-{index}-{k}"
            used.add(cell_id)
        cell["id"] = cell_id

    patterns = _path_patterns(root, Path.home() if home is None else home)
    for cell in nb.cells:
        for key in _VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                out.text = _scrub(out.text, patterns)
            elif out.output_type == "error":
                out.evalue = _scrub(out.evalue, patterns)
                out.traceback = _scrub(list(out.traceback), patterns)
            elif out.output_type in ("display_data", "execute_result"):
                data = out.get("data", {})
                data.pop(_WIDGET_MIME, None)
                if not data:
                    continue
                for mime in list(data):
                    if _is_text_mime(mime):
                        data[mime] = _scrub(data[mime], patterns)
            kept.append(out)
        cell.outputs = kept
    return nb


def _write_atomic(nb: Any, path: Path) -> None:
    """Write ``nb`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    import nbformat

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------
# running


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration (the kernel inherits them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check_kernel(kernel: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if kernel not in specs:
        raise ValueError(
            f"no Jupyter kernel named {kernel!r}; installed kernels: {', '.join(sorted(specs)) or '(none)'}. "
            "`make setup` installs the 'stnlib' kernel, or pass --kernel python3"
        )


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return "(empty cell)"


def _source_cell_index(original: Any, executed_path: Path, exec_index: int) -> int:
    """Index of the failing cell in the *original* notebook.

    papermill counts cells of the executed notebook, which may hold a newly injected parameters
    cell, and the file it writes has two more: an error banner and an anchor. The failing cell is
    found again by its id.
    """
    import nbformat
    from papermill.execute import ERROR_MARKER_TAG

    try:
        executed = nbformat.read(executed_path, as_version=4)
        cells = [c for c in executed.cells if ERROR_MARKER_TAG not in c.metadata.get("tags", ())]
        cell_id = cells[exec_index].get("id")
    except (OSError, IndexError, ValueError, AttributeError):
        cell_id = None
    for i, cell in enumerate(original.cells):
        if cell_id is not None and cell.get("id") == cell_id:
            return i
    injected_before = any(INJECTED_ID in c.metadata.get("tags", ()) for c in original.cells)
    return exec_index if injected_before else max(exec_index - 1, 0)


def _running_cell(original: Any, executed_path: Path) -> tuple[int | None, str]:
    """The cell papermill marked as running or failed when execution broke off (by id)."""
    import nbformat

    try:
        executed = nbformat.read(executed_path, as_version=4)
    except (OSError, ValueError):
        return None, ""
    marks = [c.metadata.get("papermill", {}) for c in executed.cells]
    broken = [i for i, m in enumerate(marks) if m.get("status") in ("running", "failed") or m.get("exception")]
    # after a timeout papermill marks the cell "completed"; it is the last one that started
    started = [i for i, m in enumerate(marks) if m.get("start_time")]
    if not (broken or started):
        return None, ""
    cell = executed.cells[broken[0] if broken else started[-1]]
    for i, orig in enumerate(original.cells):
        if orig.get("id") == cell.get("id"):
            return i, cell.source
    return None, cell.source


def _failure_message(chapter: str, rel_nb: str, rel_failed: str, err: Exception,
                     original: Any, failed_path: Path) -> tuple[str, int | None]:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, PapermillExecutionError):
        index = _source_cell_index(original, failed_path, err.cell_index)
        cause = f"{err.ename}: {err.evalue}".strip().splitlines()
        prompt = f", In [{err.exec_count}]" if err.exec_count else ""
        message = (
            f"chapter {chapter!r} ({rel_nb}) failed in cell {index} (0-based{prompt}) "
            f"starting `{_first_line(err.source)}`:\n    {cause[0] if cause else err.ename}\n"
        )
    else:  # a timeout, a dead kernel, a kernel that would not start
        index, source = _running_cell(original, failed_path)
        where = f" in cell {index} (0-based) starting `{_first_line(source)}`" if index is not None else ""
        first = str(err).strip().splitlines()
        message = (f"chapter {chapter!r} ({rel_nb}) failed{where}:\n"
                   f"    {type(err).__name__}: {first[0] if first else ''}\n")
    message += (
        f"{rel_nb} was left unchanged; the partly executed notebook is {rel_failed}"
        if failed_path.exists() else f"{rel_nb} was left unchanged"
    )
    return message, index


def run_chapter(notebook: str | os.PathLike, profile: str, *, kernel: str = "stnlib",
                fresh: bool = False, timeout: float | None = None,
                root: str | os.PathLike | None = None) -> float:
    """Execute one chapter notebook in place (see :func:`run_chapters`); returns seconds taken."""
    import nbformat
    import papermill

    notebook = Path(notebook).resolve()
    root = Path(root).resolve() if root is not None else notebook.parent.parent
    name = notebook.stem
    rel_nb = os.path.relpath(notebook, root)
    work_dir = root / "_build" / "papermill"
    failed_dir = root / "_build" / "failed"
    work_dir.mkdir(parents=True, exist_ok=True)
    running = work_dir / notebook.name
    original = nbformat.read(notebook, as_version=4)

    start = time.perf_counter()
    try:
        with _environment(STNLIB_PROFILE=profile, STNLIB_FRESH="1" if fresh else "0"):
            papermill.execute_notebook(
                str(notebook), str(running),
                parameters={"profile": profile, "fresh": bool(fresh)},
                kernel_name=kernel, cwd=str(notebook.parent), progress_bar=False,
                execution_timeout=timeout, log_output=False,
            )
    except Exception as err:
        failed_dir.mkdir(parents=True, exist_ok=True)
        failed_path = failed_dir / notebook.name
        if running.exists():
            os.replace(running, failed_path)
        elif failed_path.exists():
            failed_path.unlink()  # an older failure would be misleading
        message, index = _failure_message(
            name, rel_nb, os.path.relpath(failed_path, root), err, original, failed_path)
        raise ChapterError(message, chapter=name, cell_index=index,
                           failed_path=failed_path if failed_path.exists() else None) from err
    elapsed = time.perf_counter() - start

    executed = nbformat.read(running, as_version=4)
    # papermill records the kernel it was asked for; keep the notebook's own (portable) spec
    if "kernelspec" in original.metadata:
        executed.metadata["kernelspec"] = original.metadata["kernelspec"]
    tidy_notebook(executed, root=root)
    _write_atomic(executed, notebook)
    running.unlink()
    return elapsed


class TrainingError(RuntimeError):
    """Runs trained before the chapters (``fresh``) failed; the message names each and its log."""


def default_jobs() -> int:
    """Runs trained at once before the chapters: one per CPU core, each on one thread (the runs are
    small, so side by side they use a CPU better than one run on all cores); one where a GPU would
    train them."""
    import torch

    return 1 if torch.cuda.is_available() else max(1, os.cpu_count() or 1)


def train_chapter_runs(profile: str, chapters: Sequence[str], *, jobs: int | None = None,
                       log=print) -> int:
    """Retrain every run ``chapters`` train in ``profile`` (:data:`stnlib.report.card.CHAPTER_RUNS`),
    ``jobs`` at a time as local processes (:mod:`stnlib.launch`, one thread each on a CPU); returns
    how many. A run that fails raises :class:`TrainingError` after the others have finished."""
    from stnlib import launch
    from stnlib.report.card import CHAPTER_RUNS, chapter_runs

    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    specs = chapter_runs(chapters, profile)
    if not specs:
        return 0
    jobs = default_jobs() if jobs is None else jobs
    training = [c for c in chapters if c in CHAPTER_RUNS]
    log(f"retraining {len(specs)} run(s) of chapter(s) {', '.join(training)} in the {profile} profile, "
        f"{jobs} at a time, before the chapters run")
    if profile != "smoke":
        for line in _plan(specs, jobs):
            log("  " + line)
    result = launch.launch(specs, "local" if jobs > 1 else "inline", resources=launch.Resources(jobs=jobs),
                           fresh=True, log=lambda line: log("  " + line))
    if result.failures:
        raise TrainingError(f"{len(result.failures)} of {len(specs)} run(s) failed; the chapters were not run:\n"
                            + "\n".join(str(f.error) for f in result.failures))
    return len(specs)


def _plan(specs: Sequence[Any], jobs: int) -> list[str]:
    """What the retrain will cost here (:func:`stnlib.launch.describe_plan`), from records and probes."""
    import torch

    from stnlib import launch
    from stnlib.hardware import cpu_capability, device_name
    from stnlib.runs import estimate_seconds

    device = device_name("cuda" if torch.cuda.is_available() else "cpu")
    cap = cpu_capability().describe() if device.startswith("cpu") else None
    return launch.describe_plan(specs, [], estimate_seconds(specs, device, cpu_capability=cap), device, jobs=jobs)


def run_chapters(profile: str, chapters: Iterable[str] | None = None, kernel: str = "stnlib",
                 fresh: bool = False, *, timeout: float | None = None,
                 book_dir: str | os.PathLike | None = None, jobs: int | None = None) -> list[Path]:
    """Execute the chapter notebooks of ``book/_toc.yml`` in toc order and store their outputs.

    Each chapter runs in a fresh kernel ``kernel`` with its own folder as working directory,
    papermill parameters ``{"profile": profile, "fresh": fresh}`` and the environment variables
    ``STNLIB_PROFILE``/``STNLIB_FRESH`` (chapters read them when run by nbval or by hand). On
    success the notebook is tidied (:func:`tidy_notebook`) and written back atomically. The
    first failure raises :class:`ChapterError` and stops the run. ``timeout`` limits each cell
    (seconds; ``None``: no limit). Returns the notebooks that ran.

    With ``fresh``, the runs of the chapters that train (:func:`train_chapter_runs`) are retrained
    first, ``jobs`` at a time (default :func:`default_jobs`); those chapters then execute with
    ``fresh=False`` and read the new records. A chapter inside its kernel can only train one run
    after another.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    book = find_book_dir(book_dir)
    notebooks = chapter_notebooks(book, chapters)
    if not notebooks:
        print(f"no chapter notebooks in {book / '_toc.yml'}; nothing to run", flush=True)
        return []
    _check_kernel(kernel)
    total = time.perf_counter()
    pretrained: set[str] = set()
    if fresh:
        from stnlib.report.card import CHAPTER_RUNS

        names = [nb.stem for nb in notebooks]
        start = time.perf_counter()
        if train_chapter_runs(profile, names, jobs=jobs, log=lambda line: print(line, flush=True)):
            print(f"runs retrained in {format_duration(time.perf_counter() - start)}", flush=True)
        pretrained = {name for name in names if name in CHAPTER_RUNS}
    for i, nb in enumerate(notebooks, 1):
        again = fresh and nb.stem not in pretrained
        print(f"[{i}/{len(notebooks)}] {nb.parent.name}/{nb.name} (profile {profile}"
              f"{', fresh' if again else ''}) ...", flush=True)
        seconds = run_chapter(nb, profile, kernel=kernel, fresh=again, timeout=timeout,
                              root=book.parent)
        print(f"[{i}/{len(notebooks)}] {nb.name} done in {format_duration(seconds)}", flush=True)
    print(f"{len(notebooks)} chapter(s) executed in {format_duration(time.perf_counter() - total)}",
          flush=True)
    return notebooks


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected 0 or 1, got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m stnlib book``: execute the chapters, then ``jupyter-book build book``."""
    parser = argparse.ArgumentParser(
        prog="python -m stnlib book",
        description="Execute every chapter of book/_toc.yml with papermill and store the outputs "
                    "in the notebooks (then build the HTML with `jupyter-book build book`).",
    )
    parser.add_argument("--profile", choices=PROFILES, default="quick",
                        help="smoke: seconds (CI); quick: a 2-core CPU; full: the paper's protocol (GPU)")
    parser.add_argument("--fresh", type=_flag, default=False, metavar="{0,1}",
                        help="1: retrain instead of reusing stored records")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="with --fresh 1: runs trained at once before the chapters (default: one per CPU "
                             "core, one thread each; 1 where there is a GPU)")
    parser.add_argument("--kernel", default="stnlib", help="Jupyter kernel name (default: stnlib)")
    parser.add_argument("--chapters", nargs="+", metavar="NAME",
                        help="run only these chapters (e.g. toy theory); default: all in the toc")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per cell (default: no limit)")
    parser.add_argument("--list", action="store_true", help="list the chapters in toc order and exit")
    args = parser.parse_args(argv)

    try:
        if args.list:
            for nb in chapter_notebooks(find_book_dir(), args.chapters):
                print(nb.stem)
            return 0
        run_chapters(args.profile, args.chapters, kernel=args.kernel, fresh=args.fresh,
                     timeout=args.timeout, jobs=args.jobs)
    except (ChapterError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
