"""The ledger in words and HTML: one source for every sentence the book says about a claim.

Chapters and the conclusions take their sentences about a claim from here (:func:`sentence`), so
they cannot disagree with the ledger; the ledger table (:func:`ledger_html`) keeps the evidence of
each verdict one click away, and exact constructions apart from trained results.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from stnlib.claims.registry import get_claim
from stnlib.claims.regime import CANONICAL_SLOPE, CONVERGED_PP, PAPER_FACTOR, SVHN_PLATEAU_PCT
from stnlib.claims.stats import K_SIGMA, MIN_SEEDS
from stnlib.claims.verdicts import (EMPIRICAL, EXACT, FAILS_EXACTLY, HOLDS_EXACTLY, INCONCLUSIVE, INDICATED,
                                    NOT_REPRODUCED, NOT_RUN, PARTLY, REGIME, REPRODUCED, Verdict)

#: Background colours of the verdict badges (colour-blind safe, dark text readable in both themes).
VERDICT_COLORS = {
    REPRODUCED: "#b7dfb9", INDICATED: "#d9ecd0", PARTLY: "#fbe3b0", NOT_REPRODUCED: "#f4b9b2",
    INCONCLUSIVE: "#e0e0e0", REGIME: "#c9d7ef", NOT_RUN: "#f2f2f2",
    HOLDS_EXACTLY: "#b7dfb9", FAILS_EXACTLY: "#f4b9b2",
}

DECISION_RULE = (
    f"A claim about trained networks is split into comparisons between models, each a difference signed so "
    f"that a positive value is the paper's direction. A comparison holds beyond {K_SIGMA:g} combined standard "
    "errors, goes the wrong way below minus that, and is within noise in between. Standard errors come from the "
    "spread over seeds, never below the largest seed spread measured for that statistic in the same experiment, "
    "nor below the sampling error of a test error. A claim is *reproduced* when all its comparisons hold on at "
    f"least {MIN_SEEDS} seeds (with fewer: *indicated*), *partly reproduced* when some hold and none goes the "
    "wrong way, *not reproduced* when one goes the wrong way, and *inconclusive* when all are within noise. "
    "Before any of this, the records must be in the regime the claim is about: every model converged (its test "
    f"error falling by less than {CONVERGED_PP['mnist-rot']:g} pp on MNIST, {CONVERGED_PP['svhn']:g} pp on SVHN, over "
    "the last fifth of training), the paper's STNs better than the plain CNN, errors within "
    f"{PAPER_FACTOR:g}× the paper's, for orientation claims an STN-C0 that undoes the rotation (slope ≤ "
    f"{CANONICAL_SLOPE:g}), and on SVHN a CNN off the all-blank plateau (below {SVHN_PLATEAU_PCT:g}% sequence "
    "error). Where a check fails the verdict is *regime not reached*, with the check named and the data shown. "
    "Exact constructions (theory, toy) hold or fail to float precision and are reported apart."
)


def counts(verdicts: Iterable[Verdict], *, exact: bool) -> dict[str, int]:
    """How many claims got each verdict, in vocabulary order (only the exact, or only the empirical ones)."""
    words = EXACT if exact else EMPIRICAL
    out = dict.fromkeys(words, 0)
    for v in verdicts:
        if get_claim(v.claim_id).exact == exact:
            out[v.verdict] += 1
    return out


def headline(verdicts: Sequence[Verdict]) -> str:
    """``"Of the 6 claims about trained networks: 2 reproduced, 3 regime not reached, 1 not run."``"""
    c = {k: n for k, n in counts(verdicts, exact=False).items() if n}
    n = sum(c.values())
    paper_only = [v for v in verdicts if not get_claim(v.claim_id).exact and get_claim(v.claim_id).source == "paper"]
    text = (f"Of the {n} claims about trained networks ({len(paper_only)} the paper's, "
            f"{n - len(paper_only)} added questions): " + ", ".join(f"{k} {w}" for w, k in c.items()) + ".")
    e = {k: n for k, n in counts(verdicts, exact=True).items() if n}
    if e:
        text += " Exact constructions, reported apart: " + ", ".join(f"{k} {w}" for w, k in e.items()) + "."
    return text


def badge(verdict: str) -> str:
    colour = VERDICT_COLORS.get(verdict, "#ffffff")
    return (f'<span class="verdict-badge" style="background:{colour};color:#1a1a1a;padding:0.1em 0.45em;'
            f'border-radius:0.3em;font-weight:600;white-space:nowrap">{html.escape(verdict)}</span>')


def sentence(v: Verdict) -> str:
    """The book's one sentence on a verdict (Markdown): the claim, the verdict, and why."""
    c = get_claim(v.claim_id)
    where = "our added question" if c.source == "added" else c.reference
    text = f"**{c.title}** ({where}): *{v.verdict}*"
    if v.verdict == NOT_RUN:
        return text + f" ({v.evidence})."
    if v.verdict == REGIME:
        checks = "; ".join(r.check for r in v.failed_checks)
        return text + f". Ours: {v.ours}. Not judged, because the regime check failed: {checks}."
    return text + f". Ours: {v.ours}."


def evidence_html(v: Verdict) -> str:
    """The evidence behind a verdict as an HTML list (regime checks, comparisons, caveats)."""
    items = [f"<li><b>Rule:</b> {html.escape(get_claim(v.claim_id).rule)}</li>"]
    for r in v.regime:
        mark = "✓" if r.passed else "✗"
        items.append(f"<li>{mark} <b>Regime:</b> {html.escape(r.check)} — {html.escape(r.detail)}</li>")
    items.append(f"<li><b>Evidence:</b> {html.escape(v.evidence)}</li>")
    items += [f"<li><b>Caveat:</b> {html.escape(c)}</li>" for c in v.caveats]
    return "<ul>" + "".join(items) + "</ul>"


def _ledger_row(v: Verdict) -> str:
    c = get_claim(v.claim_id)
    tag = " <i>(added question)</i>" if c.source == "added" else ""
    claim = (f"<b>{html.escape(c.title)}</b>{tag}<br><small>{html.escape(c.reference)}<br>"
             f"<b>paper:</b> {html.escape(c.paper)}<br><b>ours:</b> {html.escape(v.ours)}</small>"
             f"<details><summary>evidence</summary>{evidence_html(v)}</details>")
    return f"<tr><td>{claim}</td><td>{badge(v.verdict)}</td></tr>"


#: The two parts of the ledger, in the order shown: trained networks first (the headline), then the
#: exact constructions, which hold unless there is a bug and so are never counted with them.
LEDGER_PARTS = (
    (False, "Claims about trained networks"),
    (True, "Exact constructions (checked to float precision, reported apart)"),
)


def ledger_html(verdicts: Sequence[Verdict]) -> str:
    """The ledger as one two-column table that fits the text column (a phone's too): each claim with the
    paper's numbers, ours and its evidence (in a dropdown), and its verdict; the claims about trained
    networks and the exact constructions in two labelled parts of the same table."""
    parts = []
    for exact, title in LEDGER_PARTS:
        rows = [_ledger_row(v) for v in verdicts if get_claim(v.claim_id).exact == exact]
        if rows:
            parts.append(f'<tbody><tr class="ledger-part"><th colspan="2">{html.escape(title)}</th></tr>'
                         + "".join(rows) + "</tbody>")
    return ('<table class="claims-ledger"><thead><tr><th>claim: the paper and ours</th><th>verdict</th></tr>'
            "</thead>" + "".join(parts) + "</table>")


def ledger_markdown(verdicts: Sequence[Verdict]) -> str:
    """The ledger as Markdown bullets (the notebook's plain-text form, and JupyterLab without HTML)."""
    return "\n".join(f"- {sentence(v)}" for v in verdicts) + "\n"


def is_positive(verdict: str) -> bool:
    """A verdict that supports the claim (reproduced, indicated, partly, or an exact construction holding)."""
    return verdict in (REPRODUCED, INDICATED, PARTLY, HOLDS_EXACTLY)


def is_negative(verdict: str) -> bool:
    return verdict in (NOT_REPRODUCED, FAILS_EXACTLY)


def undecided(verdict: str) -> bool:
    return verdict in (INCONCLUSIVE, REGIME, NOT_RUN)
