"""Results at a glance: what the book found, computed from the records, for the top of the book.

Three parts: a trust line (which profile, how many seeds, on what hardware, how long the training took,
real or synthetic SVHN, whether the paper's full protocol has been run), the verdicts on the paper's
claims about trained networks, and the headline numbers, the paper's beside ours.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stnlib import claims, paper
from stnlib.claims.evidence import Evidence
from stnlib.claims.registry import get_claim
from stnlib.claims.render import badge, headline
from stnlib.nn import display_name
from stnlib.profiles import EXPERIMENTS, get_profile
from stnlib.report.display import format_duration


def _records(ev: Evidence) -> list[dict[str, Any]]:
    return [r for exp, e in EXPERIMENTS.items() for m in e["models"] for r in ev.records(exp, m)]


def trust_line(profile: str, records_root: str | Path | None = None) -> str:
    """One paragraph on how far to trust the numbers (HTML-safe plain text)."""
    ev = Evidence(profile, records_root)
    recs = _records(ev)
    if not recs:
        return f"No {profile} records exist yet: nothing below is a result."
    seeds = sorted({r["seed"] for r in recs})
    devices = sorted({r["provenance"]["device"] for r in recs})
    precisions = sorted({r["provenance"].get("precision", "") for r in recs})
    precision = (f" in {'; '.join(p for p in precisions if p)}" if any(precisions) else "") + (
        " (precision not recorded for some runs)" if "" in precisions and any(precisions) else
        " (precision not recorded)" if not any(precisions) else "")
    wall = sum(float(r["provenance"]["wall_time_s"]) for r in recs)
    svhn = {r["provenance"]["data_source"] for r in recs if r["experiment"] == "svhn"}
    svhn_text = ("no SVHN records" if not svhn else "SVHN: the synthetic stand-in, not real SVHN"
                 if any("synthetic" in s for s in svhn) else "SVHN: real format 1")
    full = Evidence("full", records_root)
    n_full = len(_records(full)) if profile != "full" else len(recs)
    full_text = ("the paper's full protocol has not been run (no full records)" if n_full == 0 else
                 f"{n_full} runs of the paper's full protocol exist")
    return (f"Profile {profile}: {len(recs)} training runs, seeds {', '.join(map(str, seeds))} "
            f"(the profile has {len(get_profile(profile).seeds)}), {format_duration(wall)} of training on "
            f"{'; '.join(devices)}{precision}. {pinned_text(profile)}{svhn_text}; {full_text}.")


def pinned_text(profile: str) -> str:
    """Which runs the profile keeps at an earlier protocol, and their seeds (empty when none)."""
    parts = []
    for exp, pins in get_profile(profile).pinned.items():
        for pin in pins:
            title = EXPERIMENTS[exp]["title"]
            what = (f"every {title} run" if pin.models is None else
                    f"{' and '.join(display_name(m) for m in pin.models)} on {title}")
            seeds = ", ".join(map(str, pin.seeds))
            parts.append(f"{what} (protocol {pin.protocol_version}, seed{'s' if len(pin.seeds) > 1 else ''} {seeds})")
    if not parts:
        return ""
    return ("Kept at the earlier quick protocol's settings, not retrained at the current schedules: " + "; ".join(parts)
            + ": their verdicts say so. ")


def _table1_rows(ev: Evidence) -> list[str]:
    rows = []
    for m in ("cnn", "stn-c0", "stn-c1", "stn-sl1"):
        cells = [f"<td>{html.escape(display_name(m))}</td>"]
        for exp in ("mnist-rot", "mnist-trans"):
            ours = ev.estimate(exp, m, "error").show(unit="%") if ev.records(exp, m) else "—"
            cells.append(f"<td>{paper.TABLE1_ERROR_PERCENT[exp][m]:.2f}%</td><td>{html.escape(ours)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return rows


def table1_html(profile: str, records_root: str | Path | None = None) -> str:
    """The paper's Table 1 beside ours (mean ± sd over seeds) in one compact table."""
    ev = Evidence(profile, records_root)
    head = ("<thead><tr><th></th><th colspan=2>rotation</th><th colspan=2>translation</th></tr>"
            "<tr><th>model</th><th>paper</th><th>ours</th><th>paper</th><th>ours</th></tr></thead>")
    return (f'<table class="glance-table"><caption>Test error, paper Table 1 beside ours ({html.escape(profile)}, '
            f"mean ± sd over seeds)</caption>{head}<tbody>{''.join(_table1_rows(ev))}</tbody></table>")


def verdicts_html(verdicts: Sequence[claims.Verdict]) -> str:
    """The paper's claims about trained networks with their verdicts (the evidence is in the chapters)."""
    rows = []
    for v in verdicts:
        c = get_claim(v.claim_id)
        if c.exact:
            continue
        tag = " <i>(added question)</i>" if c.source == "added" else ""
        link = f'<small>(<a href="{c.chapter}.html">{html.escape(c.chapter)}</a>)</small>'
        rows.append(f"<tr><td>{html.escape(c.title)}{tag} {link}</td><td>{badge(v.verdict)}</td></tr>")
    return ('<table class="glance-table"><thead><tr><th>claim (chapter)</th><th>verdict</th></tr></thead>'
            "<tbody>" + "".join(rows) + "</tbody></table>")


def at_a_glance(profile: str, records_root: str | Path | None = None) -> str:
    """The whole "Results at a glance" block as HTML."""
    verdicts = claims.evaluate(profile, records_root=records_root)
    parts = [
        '<div class="admonition important results-at-a-glance"><p class="admonition-title">Results at a glance</p>',
        f"<p>{html.escape(trust_line(profile, records_root))}</p>",
        f"<p>{html.escape(headline(verdicts))}</p>",
        verdicts_html(verdicts),
        table1_html(profile, records_root),
        "</div>",
    ]
    return "\n".join(parts)


_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam"}
_PRECISIONS = {"auto": "bf16 where the device computes it natively, else fp32"}


def profiles_table():
    """What each profile trains, read from :mod:`stnlib.profiles` (never typed in a chapter): its purpose,
    seeds, the length of a rotated-MNIST and an SVHN run, precision and how many named deviations from the
    paper's protocol it has (each chapter's card lists them)."""
    import pandas as pd

    from stnlib.profiles import PROFILES

    def length(s) -> str:
        return f"{s.iterations:,} × batch {s.batch_size}, {_OPTIMIZERS.get(s.optimizer, s.optimizer)}"

    rows = []
    for name in ("smoke", "quick", "full"):
        p = PROFILES[name]
        deviations = {d for exp in EXPERIMENTS for d in p.deviations.get(exp, ())}
        rows.append({
            "profile": name, "meant for": p.about, "seeds": len(p.seeds),
            "rotated MNIST": length(p.settings["mnist-rot"]), "SVHN": length(p.settings["svhn"]),
            "precision": ", ".join(sorted({_PRECISIONS.get(s.precision, s.precision) for s in p.settings.values()})),
            "named deviations": len(deviations),
        })
    return pd.DataFrame(rows).set_index("profile")
