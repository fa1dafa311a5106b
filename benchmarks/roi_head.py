"""Benchmark the RoI head at the paper's scale: ``make bench``.

RoI sampling (2000 proposals + 100 GT boxes, batch 512, fraction 0.25, targets with weights
(10, 10, 5, 5)) and RoI feature extraction (512 RoIs on a 256-channel 37 x 62 map, 7 x 7 bins,
spatial scale 1/16; RoIAlign with sampling ratio 2, and RoI max pooling): the reference against
torchvision (``RoIHeads.select_training_samples``, ``ops.roi_align``, ``ops.roi_pool``), CPU,
float32, one and the default number of torch threads.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torchvision
from detspec.reference import roi_pooling as pool
from detspec.reference import roi_targets as ref
from torchvision.models.detection.roi_heads import RoIHeads

from benchmarks.boxes import FEATURE_HEIGHT, FEATURE_WIDTH, STRIDE, gt_boxes, paper_anchors, print_comparison
from benchmarks.boxes import proposals as rpn_proposals

BATCH, FRACTION, CHANNELS, OUTPUT = 512, 0.25, 256, (7, 7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    gt = gt_boxes(rng)
    labels = rng.integers(1, 21, len(gt))
    proposals, _ = rpn_proposals(rng, paper_anchors(), 2000)
    features = rng.normal(size=(CHANNELS, FEATURE_HEIGHT, FEATURE_WIDTH))
    rois = ref.sample_rois(proposals, gt, labels, 20, BATCH, FRACTION)[:, :4]

    heads = RoIHeads(None, None, None, 0.5, 0.5, BATCH, FRACTION, None, 0.05, 0.5, 100)
    t_proposals = torch.as_tensor(proposals, dtype=torch.float32)
    target = {"boxes": torch.as_tensor(gt, dtype=torch.float32), "labels": torch.as_tensor(labels)}
    t_features = torch.as_tensor(features, dtype=torch.float32)[None]
    t_rois = [torch.as_tensor(rois, dtype=torch.float32)]
    cases = {
        f"sample {BATCH} of {len(proposals)} proposals + {len(gt)} GT": (
            lambda: ref.sample_rois(proposals, gt, labels, 20, BATCH, FRACTION),
            lambda: heads.select_training_samples([t_proposals], [target]),
        ),
        f"roi_align {len(rois)} RoIs x {CHANNELS} ch, 7x7, ratio 2": (
            lambda: pool.roi_align(features, rois, OUTPUT, 1 / STRIDE, 2, False),
            lambda: torchvision.ops.roi_align(t_features, t_rois, OUTPUT, 1 / STRIDE, 2, False),
        ),
        f"roi_pool {len(rois)} RoIs x {CHANNELS} ch, 7x7": (
            lambda: pool.roi_pool(features, rois, OUTPUT, 1 / STRIDE),
            lambda: torchvision.ops.roi_pool(t_features, t_rois, OUTPUT, 1 / STRIDE),
        ),
    }
    for title, (reference_call, torchvision_call) in cases.items():
        print_comparison(title, reference_call, torchvision_call, args.repeat)


if __name__ == "__main__":
    main()
