"""Benchmark RPN training targets at the paper's scale: ``make bench``.

Labels, a 256-anchor sample and regression targets for 20,646 anchors (62 x 37 x 9) and 100 GT
boxes: the reference (``match_anchors`` + ``sample_balanced`` + ``regression_targets``) against
torchvision (``assign_targets_to_anchors`` + ``BalancedPositiveNegativeSampler`` +
``BoxCoder.encode``), CPU, float32, one and the default number of torch threads.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from detspec.conformance.adapters.torchvision_adapter import rpn_with_thresholds
from detspec.reference import rpn_targets as ref
from torchvision.models.detection import _utils as det_utils

from benchmarks.boxes import IMAGE_HEIGHT, IMAGE_WIDTH, gt_boxes, paper_anchors, print_comparison


def reference_targets(anchors, gt, seed=0):
    labels = ref.match_anchors(anchors, gt, (IMAGE_HEIGHT, IMAGE_WIDTH))
    sampled = ref.sample_balanced(labels[:, 0], 256, 0.5, seed)
    return sampled, ref.regression_targets(anchors, gt, labels[:, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    anchors, gt = paper_anchors(), gt_boxes(np.random.default_rng(0))
    rpn = rpn_with_thresholds(0.7, 0.3)
    t_anchors = torch.as_tensor(anchors, dtype=torch.float32)
    t_gt = torch.as_tensor(gt, dtype=torch.float32)
    sampler = det_utils.BalancedPositiveNegativeSampler(256, 0.5)

    def torchvision_targets():
        (labels,), (matched,) = rpn.assign_targets_to_anchors([t_anchors], [{"boxes": t_gt}])
        sampler([labels])
        return rpn.box_coder.encode([matched], [t_anchors])

    print_comparison(
        f"labels + sample + targets, {len(anchors)} anchors x {len(gt)} GT boxes",
        lambda: reference_targets(anchors, gt),
        torchvision_targets,
        args.repeat,
    )


if __name__ == "__main__":
    main()
