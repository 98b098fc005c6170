"""SVHN format 1 (multi-digit house numbers) for the depth sweep, and an honest synthetic stand-in.

* :mod:`~stnlib.data.svhn.archives`: the official archives (download, verify, extract);
* :mod:`~stnlib.data.svhn.format1`: ``digitStruct.mat``, the crop protocol and the real cache;
* :mod:`~stnlib.data.svhn.synthetic`: the rendered stand-in, used only when real SVHN is absent;
* :mod:`~stnlib.data.svhn.cache`: what both caches share (atomic ``.npz``, channel statistics);
* :mod:`~stnlib.data.svhn.task`: :class:`SVHNTask` over either source.

Labels are 5 positions × 11 classes: digits 0–9 (SVHN's label 10 means the digit 0) and the blank
class 10 after the last digit. Numbers with more than 5 digits are dropped and counted.
"""

from stnlib.data.svhn.archives import (
    ARCHIVE_SPLITS, SPLIT_SOURCES, SVHN_ARCHIVES, SVHN_PAGE, SVHN_URL, ArchiveInfo, archive_path, cache_dir,
    download_svhn, extract_svhn, raw_dir, svhn_dir, verify_archive,
)
from stnlib.data.svhn.cache import IMAGE_SIZE
from stnlib.data.svhn.format1 import (
    CROP_ENLARGE, REAL_SOURCE, build_svhn_cache, crop_and_resize, encode_labels, format1_crop_box,
    load_svhn_cache, read_digit_struct, real_svhn_available, union_box,
)
from stnlib.data.svhn.synthetic import (
    DEFAULT_FONTS, GENERATOR_VERSION, SYNTHETIC_SOURCE, SyntheticSVHNConfig, font_dir, make_synthetic_svhn,
    synthetic_dir, synthetic_svhn_arrays,
)
from stnlib.data.svhn.task import (
    PREPARE_CHOICES, REAL_TEST_IMAGES, REAL_TRAIN_IMAGES, SOURCES, SVHNTask, SyntheticDataWarning,
    get_svhn_task, prepare,
)

__all__ = [
    "ARCHIVE_SPLITS", "SPLIT_SOURCES", "SVHN_ARCHIVES", "SVHN_PAGE", "SVHN_URL", "ArchiveInfo", "archive_path",
    "cache_dir", "download_svhn", "extract_svhn", "raw_dir", "svhn_dir", "verify_archive", "IMAGE_SIZE",
    "CROP_ENLARGE", "REAL_SOURCE", "build_svhn_cache", "crop_and_resize", "encode_labels", "format1_crop_box",
    "load_svhn_cache", "read_digit_struct", "real_svhn_available", "union_box", "DEFAULT_FONTS",
    "GENERATOR_VERSION", "SYNTHETIC_SOURCE", "SyntheticSVHNConfig", "font_dir", "make_synthetic_svhn",
    "synthetic_dir", "synthetic_svhn_arrays", "PREPARE_CHOICES", "REAL_TEST_IMAGES", "REAL_TRAIN_IMAGES",
    "SOURCES", "SVHNTask", "SyntheticDataWarning", "get_svhn_task", "prepare",
]
