"""The paper's published numbers, labelled as the paper's.

These are the only numbers in the project that are typed in by hand. They come from
Finnveden, Jansson & Lindeberg (2020), *The problems with using STNs to align CNN feature
maps*, arXiv:2001.05858: Table 1 (MNIST test error, %) and Table 2 (SVHN sequence error, %).
Nothing in this module is ever used as one of our results.
"""

from __future__ import annotations

SOURCE = "Finnveden, Jansson & Lindeberg (2020), arXiv:2001.05858"

#: Table 1: classification error (%) on rotated and translated MNIST.
TABLE1_ERROR_PERCENT: dict[str, dict[str, float]] = {
    "mnist-rot": {"cnn": 1.71, "stn-c0": 1.08, "stn-c1": 1.32, "stn-sl1": 0.98},
    "mnist-trans": {"cnn": 1.72, "stn-c0": 1.08, "stn-c1": 1.15, "stn-sl1": 1.10},
}

#: Table 2: sequence error (%) on SVHN, STN-CX vs STN-SLX (X = 0 is the same model, STN-C0).
TABLE2_ERROR_PERCENT: dict[str, float] = {
    "stn-c0": 3.81,
    "stn-c3": 3.70,
    "stn-c6": 3.91,
    "stn-c8": 4.00,
    "stn-sl3": 3.54,
    "stn-sl6": 3.29,
    "stn-sl8": 3.27,
}


def paper_error(experiment: str, model: str) -> float | None:
    """The paper's published error (%) for ``model`` on ``experiment``, or ``None`` if not reported.

    ``experiment`` is ``"mnist-rot"``, ``"mnist-trans"`` or ``"svhn"``; variants such as
    ``"mnist-rot-adam"`` have no published number.
    """
    if experiment == "svhn":
        return TABLE2_ERROR_PERCENT.get(model)
    return TABLE1_ERROR_PERCENT.get(experiment, {}).get(model)
