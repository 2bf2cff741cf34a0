"""What ``lepidopt data inspect`` shows: class counts, the imbalance ratio and the skipped files."""

from __future__ import annotations

from ._scan import ScanResult

__all__ = ["format_scan"]


def format_scan(scan: ScanResult, *, source: str) -> str:
    """The scan as ``lepidopt data inspect`` prints it.

    Args:
        scan: A scan, from :func:`scan_source`.
        source: The source's name, as the header shows it.

    Returns:
        Counts per class, the imbalance, and the files skipped and classes dropped, as text.
    """
    counts = scan.class_counts
    total = sum(counts.values())
    width = max(len(c) for c in counts)
    lines = [f"source: {source}", f"{total} usable images in {len(counts)} classes", ""]
    for label, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {label:<{width}}  {n:>7}  {100 * n / total:5.1f}%")
    lines.append("")
    lines.append(f"imbalance ratio (largest / smallest class): {scan.imbalance_ratio:.1f}")
    if scan.dropped_classes:
        lines.append("dropped classes (too few images for a stratified split):")
        lines += [f"  {label}: {n}" for label, n in scan.dropped_classes.items()]
    lines.append(f"skipped files: {len(scan.skipped)}")
    lines += [f"  {s.path}: {s.reason}" for s in scan.skipped]
    return "\n".join(lines)
