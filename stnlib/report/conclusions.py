"""The conclusions chapter's sentences: what the verdicts, taken together, mean (computed, never typed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stnlib.claims import (FAILS_EXACTLY, HOLDS_EXACTLY, INCONCLUSIVE, INDICATED, NOT_REPRODUCED, NOT_RUN, PARTLY,
                           REGIME, REPRODUCED, Verdict, get_claim, required_runs)
from stnlib.claims.evidence import Evidence


def records_read(profile: str, records_root: str | Path | None = None) -> list[dict[str, Any]]:
    """The complete records the ledger reads in ``profile`` (one per experiment, model and seed present)."""
    ev = Evidence(profile, records_root)
    pairs = dict.fromkeys((e, m) for e, m, _ in required_runs(profile))
    return [r for e, m in pairs for r in ev.records(e, m)]


def _titles(vs: Sequence[Verdict]) -> str:
    return "; ".join(f"*{get_claim(v.claim_id).title}*" for v in vs)


def what_this_means(verdicts: Sequence[Verdict], profile: str) -> str:
    """A short account of the ledger: what the exact constructions show, what the trained networks confirm or
    contradict, and what the profile could not judge and why (Markdown paragraphs)."""
    exact = [v for v in verdicts if get_claim(v.claim_id).exact]
    trained = [v for v in verdicts if not get_claim(v.claim_id).exact]
    by = {k: [v for v in trained if v.verdict == k] for k in
          (REPRODUCED, INDICATED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE, REGIME, NOT_RUN)}
    out = []
    holds = [v for v in exact if v.verdict == HOLDS_EXACTLY]
    fails = [v for v in exact if v.verdict == FAILS_EXACTLY]
    if exact:
        out.append(f"**The argument.** {len(holds)} of the {len(exact)} exact constructions hold to float precision"
                   + (f" ({_titles(holds)})" if holds else "")
                   + (f"; {len(fails)} fail ({_titles(fails)}), which would point to a bug" if fails else "")
                   + ". They show the mechanism the paper describes: a purely spatial warp cannot move activity between "
                   "channels, and only translations, which do not move it, are aligned exactly.")
    decided = by[REPRODUCED] + by[PARTLY] + by[NOT_REPRODUCED] + by[INDICATED]
    if decided:
        parts = []
        if by[REPRODUCED]:
            parts.append(f"reproduced on three or more seeds: {_titles(by[REPRODUCED])}")
        if by[PARTLY]:
            parts.append(f"partly reproduced: {_titles(by[PARTLY])}")
        if by[INDICATED]:
            parts.append(f"indicated on fewer than three seeds: {_titles(by[INDICATED])}")
        if by[NOT_REPRODUCED]:
            parts.append(f"contradicted by the records: {_titles(by[NOT_REPRODUCED])}")
        out.append(f"**The trained networks ({profile} profile).** " + "; ".join(parts) + ".")
    if by[REGIME]:
        checks = Counter(r.check for v in by[REGIME] for r in v.failed_checks)
        listed = "\n".join(f"- {c} ({n} claim{'s' if n > 1 else ''})" for c, n in checks.most_common())
        out.append(f"**Not judged.** {len(by[REGIME])} of the {len(trained)} claims about trained networks are "
                   f"outside the regime the paper's claim is about in the {profile} profile, so the book shows their "
                   f"data without a verdict. The checks that failed:\n\n{listed}")
    if by[INCONCLUSIVE]:
        out.append(f"**Within noise.** {_titles(by[INCONCLUSIVE])}: the differences the paper reports are smaller "
                   "than what separates two trainings of the same network here.")
    if by[NOT_RUN]:
        out.append(f"**Not run in this profile.** {_titles(by[NOT_RUN])}.")
    return "\n\n".join(out)
