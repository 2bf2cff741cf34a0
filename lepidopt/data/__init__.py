"""Datasets (folder, ETHEC, CSV), scanning, frozen splits, per-trial sampling, pipelines and the demo collection."""

from ._demo import ETHEC_SHAPE, DemoCollection, demo_class_sizes, make_demo_collection
from ._images import load_resized, load_rgb, problem_with, read_resized
from ._inspect import format_scan
from ._pipeline import decoded_images, image_batches
from ._progress import progress
from ._records import SUBSETS, Record
from ._sampling import class_weights, undersample
from ._scan import ScanResult, Skipped, scan_records, scan_source
from ._sources import LABEL_LEVELS, DataSpec, read_records, visible_files
from ._split import Split, make_split, read_split, write_split
from ._taxonomy import (Taxonomy, consistent_share, decode_consistent, decode_independent, decode_output,
                        hierarchical_distance, level_tables, mistake_severity)

__all__ = [
    "DataSpec",
    "DemoCollection",
    "ETHEC_SHAPE",
    "LABEL_LEVELS",
    "Record",
    "SUBSETS",
    "ScanResult",
    "Skipped",
    "Split",
    "Taxonomy",
    "class_weights",
    "consistent_share",
    "decode_consistent",
    "decode_independent",
    "decode_output",
    "decoded_images",
    "demo_class_sizes",
    "format_scan",
    "image_batches",
    "load_resized",
    "load_rgb",
    "make_demo_collection",
    "hierarchical_distance",
    "level_tables",
    "make_split",
    "mistake_severity",
    "problem_with",
    "progress",
    "read_records",
    "read_resized",
    "read_split",
    "scan_records",
    "scan_source",
    "undersample",
    "visible_files",
    "write_split",
]
