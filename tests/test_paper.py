from stnlib import paper


def test_table1_and_table2_are_the_published_values():
    assert paper.paper_error("mnist-rot", "stn-sl1") == 0.98
    assert paper.paper_error("mnist-trans", "cnn") == 1.72
    assert paper.paper_error("svhn", "stn-sl8") == 3.27
    assert paper.paper_error("svhn", "stn-c0") == 3.81


def test_unreported_combinations_are_none():
    assert paper.paper_error("mnist-rot", "stn-dl1") is None
    assert paper.paper_error("mnist-rot-adam", "stn-c1") is None
