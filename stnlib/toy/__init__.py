"""The toy chapter's exact constructions: the W/M counterexample, the bar, and real first layers.

Equation (1) of the paper says that warping the feature maps of a transformed image back with the
inverse transformation does not, in general, give the feature maps of the original image:
``T⁻¹ Γ(T f) ≠ Γ f``. This package makes that statement exact and measurable:

* :mod:`~stnlib.toy.letters`: the "W" and "M" of the paper's Figure 1, a bar, and fixed detectors;
* :mod:`~stnlib.toy.search`: searches for a spatial warp that aligns feature maps, and a lower bound;
* :mod:`~stnlib.toy.examples`: :func:`wm_counterexample` (no spatial warp aligns the W/M maps; a rotation
  plus a swap of the two channels does) and :func:`bar_example` (a channel that is all zero on the
  rotated bar);
* :mod:`~stnlib.toy.first_layer`: the same measure for a real first conv layer (random, trained, or
  made rotation invariant) as a function of the rotation angle or the integer shift.

Exact cases (90° steps, integer shifts) use ``torch.rot90`` and slicing, not ``grid_sample``, so what
holds exactly is shown exactly. The profile-dependent amounts of work are
:func:`stnlib.profiles.toy_settings`.
"""

from stnlib.measures import alignment_error, disc_mask, disc_radius
from stnlib.toy.examples import BarExample, WMCounterexample, bar_example, wm_counterexample
from stnlib.toy.first_layer import (
    MNIST_NORMALIZATION, c4_symmetrized, conv_features, curve_angles, first_conv, mnist_test_images,
    pointwise_layer, random_first_layer, rotation_misalignment_curve, train_first_layer, train_mnist_cnn,
    translation_misalignment_curve,
)
from stnlib.toy.letters import (
    CANVAS_SIZE, CHANNELS, DETECTION_THRESHOLD, LETTER_SIZE, HorizontalEdgeDetector, LetterDetector, bar_image,
    letter_bitmap, letter_image, rotated_w_image,
)
from stnlib.toy.search import (
    AffineFit, RotationSearch, affine_search, rotation_search, rotation_swap_error, spatial_lower_bound,
)
from stnlib.transforms import rotate_maps, shift_exact

__all__ = [
    "alignment_error", "disc_mask", "disc_radius", "BarExample", "WMCounterexample", "bar_example",
    "wm_counterexample", "MNIST_NORMALIZATION", "c4_symmetrized", "conv_features", "curve_angles", "first_conv",
    "mnist_test_images", "pointwise_layer", "random_first_layer", "rotation_misalignment_curve",
    "train_first_layer", "train_mnist_cnn", "translation_misalignment_curve", "CANVAS_SIZE", "CHANNELS",
    "DETECTION_THRESHOLD", "LETTER_SIZE", "HorizontalEdgeDetector", "LetterDetector", "bar_image",
    "letter_bitmap", "letter_image", "rotated_w_image", "AffineFit", "RotationSearch", "affine_search",
    "rotation_search", "rotation_swap_error", "spatial_lower_bound", "rotate_maps", "shift_exact",
]
