"""The reproducibility card that opens every chapter: how its numbers were produced.

The card summarises the profile, seeds, devices, precision, wall time, data sources, code versions and
the profile's deviations from the paper (grouped by experiment), read from the chapter's records
rather than typed by hand, and says how to rerun the chapter (the command per profile and how long
it took, from the records).
"""

from __future__ import annotations

import contextlib
import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stnlib.profiles import deviations_for
from stnlib.report.beyond import EXPERIMENT as BEYOND_EXPERIMENT
from stnlib.report.beyond import MODELS as BEYOND_MODELS
from stnlib.report.display import format_duration
from stnlib.runs import RunSpec, experiment_runs


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [value]
    return list(value)


def _counted(values: Iterable[Any]) -> str:
    """``a`` or ``a (×3), b (×1)``: distinct values in first-seen order with counts when mixed."""
    counts = Counter(values)
    if len(counts) == 1:
        return str(next(iter(counts)))
    return "; ".join(f"{v} (×{n})" for v, n in counts.items())


@dataclass(frozen=True)
class CardField:
    label: str
    value: str


def _provenance(r: Mapping[str, Any], profile: str) -> Mapping[str, Any]:
    """A record's provenance, checked to have what the card shows (``ValueError`` naming the record)."""
    where = f"{r.get('experiment', '?')}/{r.get('model', '?')} seed {r.get('seed', '?')}"
    if "provenance" not in r or "seed" not in r:
        raise ValueError(f"record {where} lacks 'seed' or 'provenance'; not a stnlib.record/1 dict")
    if r.get("profile", profile) != profile:
        raise ValueError(f"record {where} is from profile {r['profile']!r}, the card says {profile!r}")
    p = r["provenance"]
    missing = [k for k in ("device", "wall_time_s", "data_source", "git_commit") if k not in p]
    if missing:
        raise ValueError(f"record {where}: provenance lacks {missing}")
    return p


def card_fields(*, chapter: str, profile: str, records: Sequence[Mapping[str, Any]] = (),
                data_source: str | Iterable[str] | None = None,
                deviations: Mapping[str, Sequence[str]] | str | None = None,
                seeds: int | Iterable[int] | None = None, device: str | Iterable[str] | None = None,
                wall_time_s: float | None = None, commits: Iterable[str] = (),
                software: Iterable[str] = ()) -> tuple[list[CardField], dict[str, list[str]]]:
    """The card's rows and its deviations by experiment: pure formatting, no I/O.

    With ``records`` (dicts in the ``stnlib.record/1`` schema), seeds, devices, wall time, data
    sources, commits and library versions are read from them; passing any of ``seeds``,
    ``device``, ``wall_time_s``, ``data_source`` as well raises ``ValueError`` (numbers in the
    book come from records, never typed). Without records those arguments describe a chapter
    that computes everything live.
    """
    records = [dict(r) for r in records]
    fields = [CardField("Profile", profile)]
    if records:
        typed = {k: v for k, v in (("seeds", seeds), ("device", device),
                                   ("wall_time_s", wall_time_s), ("data_source", data_source))
                 if v is not None}
        if typed:
            raise ValueError(
                f"reproducibility card for {chapter!r}: {', '.join(typed)} must come from the records, "
                "not be passed alongside them"
            )
        prov = [_provenance(r, profile) for r in records]
        n = len(records)
        status = Counter(r.get("status", "complete") for r in records)
        experiments = sorted({str(r.get("experiment")) for r in records if r.get("experiment")})
        models = len({(r.get("experiment"), r.get("model")) for r in records})
        summary = f"{n} run{'s' if n != 1 else ''} ({models} model{'s' if models != 1 else ''}"
        summary += f"; {', '.join(experiments)})" if experiments else ")"
        if status.get("failed"):
            summary += f"; **{status['failed']} failed**"
        fields.append(CardField("Records", summary))
        fields.append(CardField("Seeds", ", ".join(str(s) for s in sorted({int(r["seed"]) for r in records}))))
        fields.append(CardField("Device", _counted(p["device"] for p in prov)))
        if any("precision" in p for p in prov):
            fields.append(CardField("Precision", _counted(p.get("precision", "not recorded") for p in prov)))
        total = sum(float(p["wall_time_s"]) for p in prov)
        fields.append(CardField("Wall time", f"{format_duration(total)} of training in total"
                                + (f" ({n} runs)" if n > 1 else "")))
        fields.append(CardField("Data", _counted(p["data_source"] for p in prov)))
        code = [f"git {str(p['git_commit'])[:12]}{' + uncommitted changes' if p.get('git_dirty') else ''}"
                for p in prov]
        versions = [", ".join(f"{lib} {p[key]}" for lib, key in
                              (("stnlib", "stnlib_version"), ("torch", "torch_version"),
                               ("Python", "python_version")) if key in p) for p in prov]
        fields.append(CardField("Code", _counted(code)))
        if any(versions):
            fields.append(CardField("Software", _counted(v for v in versions if v)))
        dates = sorted(str(p["date"])[:10] for p in prov if p.get("date"))
        if dates:
            fields.append(CardField("Trained", dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"))
    else:
        seed_list = _as_list(seeds)
        fields.append(CardField("Seeds", ", ".join(str(s) for s in seed_list) if seed_list else "none (deterministic)"))
        dev = _as_list(device)
        fields.append(CardField("Device", "; ".join(map(str, dev)) if dev else "not recorded"))
        fields.append(CardField("Wall time", format_duration(wall_time_s) if wall_time_s is not None
                                else "computed live when the chapter runs"))
        src = _as_list(data_source)
        fields.append(CardField("Data", "; ".join(map(str, src)) if src else "none (synthetic inputs built in the chapter)"))
        commit_list = _as_list(commits)
        if commit_list:
            fields.append(CardField("Code", "; ".join(map(str, commit_list))))
        soft = _as_list(software)
        if soft:
            fields.append(CardField("Software", "; ".join(map(str, soft))))
    if isinstance(deviations, str):  # a pointer instead of a list ("listed in each chapter's card")
        return fields, deviations
    grouped = {exp: list(dict.fromkeys(str(d) for d in devs)) for exp, devs in (deviations or {}).items() if devs}
    return fields, grouped


def card_markdown(*, chapter: str, profile: str, **kwargs: Any) -> str:
    """The card as Markdown text (also the notebook's plain-text fallback)."""
    fields, deviations = card_fields(chapter=chapter, profile=profile, **kwargs)
    lines = [f"**Reproducibility card: {chapter}**", ""]
    lines += [f"- **{f.label}:** {f.value}" for f in fields]
    if isinstance(deviations, str):
        return "\n".join(lines + [f"- **Deviations from the paper:** {deviations}"]) + "\n"
    lines.append("- **Deviations from the paper:**" + ("" if deviations else " none"))
    for exp, devs in deviations.items():
        lines.append(f"  - {exp}:")
        lines += [f"    - {d}" for d in devs]
    return "\n".join(lines) + "\n"


def _inline(text: str) -> str:
    """HTML-escape ``text``, keeping the card's own ``**bold**`` marks."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def card_html(*, chapter: str, profile: str, **kwargs: Any) -> str:
    """The card as an HTML admonition (styled by the book theme, plain in JupyterLab)."""
    fields, deviations = card_fields(chapter=chapter, profile=profile, **kwargs)
    rows = [f"<li><strong>{html.escape(f.label)}:</strong> {_inline(f.value)}</li>" for f in fields]
    if isinstance(deviations, str):
        rows.append(f"<li><strong>Deviations from the paper:</strong> {_inline(deviations)}</li>")
    elif deviations:
        groups = "".join(f"<li><em>{html.escape(exp)}</em><ul>" + "".join(f"<li>{html.escape(d)}</li>" for d in devs)
                         + "</ul></li>" for exp, devs in deviations.items())
        rows.append(f"<li><strong>Deviations from the paper:</strong><ul>{groups}</ul></li>")
    else:
        rows.append("<li><strong>Deviations from the paper:</strong> none</li>")
    return (
        '<div class="admonition note reproducibility-card">\n'
        f'<p class="admonition-title">Reproducibility card: {html.escape(chapter)}</p>\n'
        f"<ul>\n{chr(10).join(rows)}\n</ul>\n</div>\n"
    )


def _html_class():
    from IPython.display import HTML

    class ReproducibilityCard(HTML):
        """An HTML card whose plain-text form is the Markdown text (logs, terminals)."""

        def __init__(self, html_text: str, markdown_text: str):
            super().__init__(html_text)
            self.markdown = markdown_text

        def __repr__(self) -> str:
            return self.markdown

    return ReproducibilityCard


def _live_device() -> str:
    try:
        import torch

        from stnlib.hardware import device_name

        return device_name("cuda" if torch.cuda.is_available() else "cpu")
    except Exception:  # the card must never break a chapter
        return "not recorded"


def _live_code() -> tuple[list[str], list[str]]:
    import platform

    from stnlib import __version__

    commits: list[str] = []
    try:
        from stnlib.records import git_commit

        commit, dirty = git_commit()
        if commit != "unknown":
            commits.append(f"git {commit[:12]}{' + uncommitted changes' if dirty else ''}")
    except Exception:
        pass
    software = [f"stnlib {__version__}"]
    with contextlib.suppress(Exception):
        import torch

        software.append(f"torch {torch.__version__}")
    software.append(f"Python {platform.python_version()}")
    return commits, [", ".join(software)]


def reproducibility_card(*, chapter: str, profile: str, records: Iterable[Mapping[str, Any]] = (),
                         data_source: str | Iterable[str] | None = None,
                         deviations: Mapping[str, Sequence[str]] | str | None = None,
                         seeds: int | Iterable[int] | None = None,
                         device: str | Iterable[str] | None = None,
                         wall_time_s: float | None = None):
    """A card summarising how a chapter's numbers were produced, for display as a chapter opens.

    With ``records``, everything but the deviations is read from their provenance; without,
    ``seeds``/``device``/``data_source``/``wall_time_s`` describe a live chapter (the device
    and the code version default to this kernel's). When ``deviations`` is empty, the profile's
    deviations for the records' experiments are taken from :mod:`stnlib.profiles`; a string is shown in their
    place (a chapter that reads other chapters' records points to their cards).

    Returns an ``IPython.display.HTML`` object (a subclass whose text form is Markdown); the
    pure builders are :func:`card_fields`, :func:`card_markdown` and :func:`card_html`.
    """
    records = [dict(r) for r in records]
    if deviations is None:
        deviations = {}
        for exp in dict.fromkeys(str(r["experiment"]) for r in records if r.get("experiment")):
            with contextlib.suppress(ValueError):
                deviations[exp] = list(deviations_for(profile, exp))
    kwargs: dict[str, Any] = {"records": records, "deviations": deviations}
    if not records:
        commits, software = _live_code()
        kwargs.update(seeds=seeds, device=device if device is not None else _live_device(),
                      wall_time_s=wall_time_s, data_source=data_source,
                      commits=commits, software=software)
    else:
        kwargs.update(seeds=seeds, device=device, wall_time_s=wall_time_s, data_source=data_source)
    cls = _html_class()
    return cls(card_html(chapter=chapter, profile=profile, **kwargs),
               card_markdown(chapter=chapter, profile=profile, **kwargs))


#: The runs each chapter trains, as (experiment, models) pairs (``None``: the experiment's own models).
#: ``make book FRESH=1`` trains these before it executes the chapter (:func:`stnlib.book.run_chapters`).
CHAPTER_RUNS: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    "mnist": (("mnist-rot", None), ("mnist-trans", None), ("mnist-rot-adam", None)),
    "svhn": (("svhn", None),),
    "beyond": ((BEYOND_EXPERIMENT, BEYOND_MODELS),),
}
#: The experiments each chapter trains (their records decide what a rerun costs).
CHAPTER_EXPERIMENTS: dict[str, tuple[str, ...]] = {
    chapter: tuple(experiment for experiment, _ in pairs) for chapter, pairs in CHAPTER_RUNS.items()
}


def chapter_runs(chapters: Iterable[str], profile: str) -> list[RunSpec]:
    """Every run the ``chapters`` train in ``profile`` (each once, in chapter order); chapters that
    train nothing contribute none."""
    out: list[RunSpec] = []
    for chapter in chapters:
        for experiment, models in CHAPTER_RUNS.get(chapter, ()):
            out += [spec for spec in experiment_runs(experiment, profile, models=models) if spec not in out]
    return out


def rerun_lines(chapter: str, quick_records: Sequence[Mapping[str, Any]] = (),
                full_minutes: float | None = None) -> list[str]:
    """How to rerun ``chapter`` (Markdown lines): the command per profile and what it took or costs.

    ``quick_records`` are the chapter's quick records (their wall times and device say what a quick retrain
    took); ``full_minutes`` an estimate of the full profile on a GPU from committed probes, if any.
    """
    from stnlib.paths import RECORDS_ENV

    lines = [f"Render from the stored records: `make book CHAPTERS={chapter}` (seconds)."]
    if quick_records:
        wall = sum(float(r["provenance"]["wall_time_s"]) for r in quick_records)
        devices = _counted(r["provenance"]["device"] for r in quick_records)
        lines.append(f"Retrain it in the `quick` profile: `make book FRESH=1 CHAPTERS={chapter}`; its "
                     f"{len(quick_records)} runs took {format_duration(wall)} of training on {devices} "
                     "(sum of the records' wall times).")
    elif chapter in CHAPTER_EXPERIMENTS:
        lines.append(f"Retrain it in the `quick` profile: `make book FRESH=1 CHAPTERS={chapter}`.")
    if chapter in CHAPTER_EXPERIMENTS:
        cost = (f"about {format_duration(60 * full_minutes)} of GPU time (from committed GPU probes)"
                if full_minutes else "no GPU measurement committed yet")
        lines.append(f"The paper's protocol, on a GPU: `make book PROFILE=full CHAPTERS={chapter}` ({cost}; "
                     "`python -m stnlib sweep ... --launcher slurm` runs the training on a cluster).")
        lines.append(f"Outside a clone (a pip-installed stnlib) set `{RECORDS_ENV}` to a clone's `book/records` to "
                     "render from the committed records; otherwise the chapter says so and trains them.")
    elif chapter == "conclusions":
        lines.append("This chapter trains nothing: it reads the other chapters' records (`PROFILE=full` reads "
                     "the full ones) and recomputes the exact constructions.")
    else:
        lines.append("This chapter trains nothing: it computes its constructions live in every profile.")
    return lines


def rerun_box(chapter: str, quick_records: Sequence[Mapping[str, Any]] = (), full_minutes: float | None = None):
    """The "Rerun this chapter" box (a collapsed admonition in the book, Markdown in a terminal)."""
    lines = rerun_lines(chapter, quick_records, full_minutes)
    items = "".join(f"<li>{_code(html.escape(line))}</li>" for line in lines)
    text = "**Rerun this chapter**\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"
    return _html_class()(
        f'<details class="admonition tip rerun-box"><summary class="admonition-title">Rerun this chapter'
        f"</summary><ul>{items}</ul></details>\n", text)


def _code(text: str) -> str:
    """Markdown backticks to ``<code>`` (the box is HTML)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
