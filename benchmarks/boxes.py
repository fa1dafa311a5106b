"""Benchmark the box reference against torchvision at the paper's scale: ``make bench``.

* IoU of 100 GT boxes x 20,646 anchors (a 62 x 37 feature map, stride 16, 9 anchors per cell);
* NMS at 0.7 of 12,000 proposals (anchors moved by small random deltas, random scores).

Inputs are fixed by a seed. Each timing is the median of repeated runs (``timeit``); torchvision
runs on the CPU in float32 with one intra-op thread (like the single-threaded NumPy reference)
and with torch's default thread count. A benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import timeit

import numpy as np
import torch
import torchvision
from detspec.reference import boxes as ref

FEATURE_HEIGHT, FEATURE_WIDTH, STRIDE = 37, 62, 16
IMAGE_HEIGHT, IMAGE_WIDTH = FEATURE_HEIGHT * STRIDE, FEATURE_WIDTH * STRIDE


def paper_anchors() -> np.ndarray:
    """20,646 anchors: areas 128², 256², 512² x ratios 0.5, 1, 2 at every cell of a 62 x 37 map."""
    sizes, ratios = np.array([128.0, 256.0, 512.0]), np.array([0.5, 1.0, 2.0])
    widths = (sizes[None, :] / np.sqrt(ratios)[:, None]).ravel()
    heights = (sizes[None, :] * np.sqrt(ratios)[:, None]).ravel()
    cell = np.stack([-widths, -heights, widths, heights], axis=1) / 2
    ys, xs = np.meshgrid(np.arange(FEATURE_HEIGHT), np.arange(FEATURE_WIDTH), indexing="ij")
    centres = (np.stack([xs, ys, xs, ys], axis=-1).reshape(-1, 1, 4) + 0.5) * STRIDE
    return (centres + cell[None]).reshape(-1, 4)


def gt_boxes(rng: np.random.Generator, count: int = 100) -> np.ndarray:
    x1 = rng.uniform(0, IMAGE_WIDTH - 32, count)
    y1 = rng.uniform(0, IMAGE_HEIGHT - 32, count)
    w = rng.uniform(16, IMAGE_WIDTH - x1)
    h = rng.uniform(16, IMAGE_HEIGHT - y1)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def proposals(rng: np.random.Generator, anchors: np.ndarray, count: int = 12000):
    deltas = rng.normal(0.0, 0.2, size=anchors.shape)
    boxes = ref.clip_boxes_to_image(ref.decode_boxes(anchors, deltas), (IMAGE_HEIGHT, IMAGE_WIDTH))
    scores = rng.uniform(size=len(boxes))
    top = np.argsort(-scores)[:count]
    return boxes[top], scores[top]


def median_seconds(function, repeat: int) -> float:
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return statistics.median(t / number for t in timer.repeat(repeat=repeat, number=number))


def print_comparison(title: str, reference_call, torchvision_call, repeat: int) -> None:
    """Time the reference once and torchvision at one and at the default number of threads."""
    reference = median_seconds(reference_call, repeat)
    print(f"{title}:")
    print(f"  reference                  {reference * 1e3:8.2f} ms")
    default = torch.get_num_threads()
    for threads in sorted({1, default}):
        torch.set_num_threads(threads)
        seconds = median_seconds(torchvision_call, repeat)
        print(
            f"  torchvision, {threads} thread(s)    {seconds * 1e3:8.2f} ms   reference/this = "
            f"{reference / seconds:5.2f}"
        )
    torch.set_num_threads(default)


def run(repeat: int) -> dict:
    rng = np.random.default_rng(0)
    anchors = paper_anchors()
    gt = gt_boxes(rng)
    boxes, scores = proposals(rng, anchors)
    t_gt, t_anchors = torch.as_tensor(gt, dtype=torch.float32), torch.as_tensor(anchors, dtype=torch.float32)
    t_boxes = torch.as_tensor(boxes, dtype=torch.float32)
    t_scores = torch.as_tensor(scores, dtype=torch.float32)
    kept_reference = len(ref.nms(boxes, scores, 0.7))
    kept_torchvision = len(torchvision.ops.nms(t_boxes, t_scores, 0.7))
    default_threads = torch.get_num_threads()
    results = {"iou_100x20646": {}, "nms_12000_at_0.7": {}}
    results["iou_100x20646"]["reference"] = median_seconds(lambda: ref.box_iou(gt, anchors), repeat)
    results["nms_12000_at_0.7"]["reference"] = median_seconds(lambda: ref.nms(boxes, scores, 0.7), repeat)
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        label = f"torchvision_{threads}_thread{'s' if threads > 1 else ''}"
        results["iou_100x20646"][label] = median_seconds(
            lambda: torchvision.ops.box_iou(t_gt, t_anchors), repeat
        )
        results["nms_12000_at_0.7"][label] = median_seconds(
            lambda: torchvision.ops.nms(t_boxes, t_scores, 0.7), repeat
        )
    torch.set_num_threads(default_threads)
    return {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "versions": {
            "numpy": np.__version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        },
        "anchors": len(anchors),
        "nms_kept": {"reference": kept_reference, "torchvision": kept_torchvision},
        "seconds": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args()
    results = run(args.repeat)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{results['anchors']} anchors; NMS kept {results['nms_kept']}; {results['machine']}")
    for task, timings in results["seconds"].items():
        base = timings["reference"]
        print(f"{task}:")
        for label, seconds in timings.items():
            print(f"  {label:<26} {seconds * 1e3:9.2f} ms   reference/this = {base / seconds:5.2f}")


if __name__ == "__main__":
    main()
