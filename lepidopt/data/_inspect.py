"""What ``lepidopt data inspect`` shows: class counts, the imbalance ratio and the skipped files; with taxonomy
levels, the counts and imbalance of every level and the fine classes too small to split."""

from __future__ import annotations

from ._scan import ScanResult

__all__ = ["format_scan"]

_LISTED = 30  # classes listed one by one per taxonomy level below the coarsest


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
    lines = [f"source: {source}"]
    if scan.levels is None:
        lines += [f"{total} usable images in {len(counts)} classes", ""]
        lines += _class_lines(counts, total)
        lines += ["", f"imbalance ratio (largest / smallest class): {scan.imbalance_ratio:.1f}"]
    else:
        lines += [f"{total} usable images; taxonomy levels {', '.join(scan.levels)}", ""]
        for level, name in enumerate(scan.levels):
            level_counts = scan.level_counts(level)
            placed = sum(level_counts.values())
            lines.append(f"{name}: {len(level_counts)} classes, {placed} images placed at this level, imbalance ratio "
                         f"{max(level_counts.values()) / min(level_counts.values()):.1f}")
            shown = _class_lines(level_counts, total)
            lines += shown[:_LISTED] + ([f"  ... and {len(shown) - _LISTED} more"] if len(shown) > _LISTED else [])
            small = scan.unplaced.get(name, {})
            if small:
                lines.append(f"  {len(small)} {name} classes too small to split ({sum(small.values())} images, learned "
                             f"down to {scan.levels[level - 1]}): "
                             + ", ".join(f"{label} {n}" for label, n in list(small.items())[:_LISTED])
                             + (" ..." if len(small) > _LISTED else ""))
            lines.append("")
    if scan.dropped_classes:
        lines.append("dropped classes (too few images for a stratified split):")
        lines += [f"  {label}: {n}" for label, n in scan.dropped_classes.items()]
    lines.append(f"skipped files: {len(scan.skipped)}")
    lines += [f"  {s.path}: {s.reason}" for s in scan.skipped]
    return "\n".join(lines)


def _class_lines(counts: dict[str, int], total: int) -> list[str]:
    width = max(len(c) for c in counts)
    return [f"  {label:<{width}}  {n:>7}  {100 * n / total:5.1f}%"
            for label, n in sorted(counts.items(), key=lambda kv: -kv[1])]
