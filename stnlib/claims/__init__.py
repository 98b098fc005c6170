"""The paper's claims, each with a verdict computed from the records: the book's answer to
"does the paper reproduce?".

* :mod:`~stnlib.claims.stats`: estimates over seeds with measured noise, signed comparisons;
* :mod:`~stnlib.claims.evidence`: what one profile's records say (never trains);
* :mod:`~stnlib.claims.regime`: checks that the networks are where the paper's claim is about;
* :mod:`~stnlib.claims.exact`: constructions that hold to float precision (reported apart);
* :mod:`~stnlib.claims.rules`: the rule of each claim about trained networks;
* :mod:`~stnlib.claims.verdicts`: the vocabulary of verdicts;
* :mod:`~stnlib.claims.registry`: the claims as data, and :func:`evaluate`;
* :mod:`~stnlib.claims.render`: the sentences and the ledger the book shows.
"""

from stnlib.claims.registry import CHAPTERS, CLAIMS, Claim, claims_for, evaluate, get_claim, required_runs
from stnlib.claims.render import DECISION_RULE, headline, ledger_html, ledger_markdown, sentence
from stnlib.claims.verdicts import (EMPIRICAL, EXACT, FAILS_EXACTLY, HOLDS_EXACTLY, INCONCLUSIVE, INDICATED,
                                    NOT_REPRODUCED, NOT_RUN, PARTLY, REGIME, REPRODUCED, Verdict)

__all__ = [
    "CHAPTERS", "CLAIMS", "Claim", "claims_for", "evaluate", "get_claim", "required_runs", "DECISION_RULE",
    "headline", "ledger_html", "ledger_markdown", "sentence", "EMPIRICAL", "EXACT", "FAILS_EXACTLY",
    "HOLDS_EXACTLY", "INCONCLUSIVE", "INDICATED", "NOT_REPRODUCED", "NOT_RUN", "PARTLY", "REGIME", "REPRODUCED",
    "Verdict",
]
