"""Benchmark proposal generation at the paper's scale: ``make bench``.

20,646 anchors (62 x 37 x 9), random logits and small random deltas, pre-NMS top 12,000, NMS at
0.7, post-NMS top 2,000, min size 16: the reference (``generate_proposals``, global pipeline as
py-faster-rcnn) against torchvision (``BoxCoder.decode`` + ``filter_proposals``; one level, so
per-level and global coincide), CPU, float32, one and the default number of torch threads.
"""

from __future__ import annotations

import argparse

import numpy as np
from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter
from detspec.reference.proposals import generate_proposals

from benchmarks.boxes import IMAGE_HEIGHT, IMAGE_WIDTH, paper_anchors, print_comparison

SETTINGS = (12000, 2000, 0.7, 16.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    anchors = paper_anchors()
    logits, deltas = rng.normal(size=len(anchors)), rng.normal(0, 0.2, size=(len(anchors), 4))
    levels = np.zeros(len(anchors), dtype=np.int64)
    inputs = (anchors, logits, deltas, levels, (IMAGE_HEIGHT, IMAGE_WIDTH), *SETTINGS)
    tv = TorchvisionAdapter()
    counts = (len(generate_proposals(*inputs, pipeline="global")), len(tv.generate_proposals(*inputs).boxes))
    print_comparison(
        f"proposals from {len(anchors)} anchors, pre-NMS 12000, post-NMS 2000 "
        f"(kept: reference {counts[0]}, torchvision {counts[1]})",
        lambda: generate_proposals(*inputs, pipeline="global"),
        lambda: tv.generate_proposals(*inputs),
        args.repeat,
    )


if __name__ == "__main__":
    main()
