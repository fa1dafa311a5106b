"""Negative controls of proposal generation (``spec/proposals.md``)."""

from __future__ import annotations

import numpy as np
from detspec.reference import boxes as ref
from detspec.reference import proposals as ref_proposals

from tests.negative_controls.base import Control, as_proposals, positional


def _proposals(args, **overrides):
    settings = {"pipeline": "per-level", "min_size_stage": "after-top-n", **overrides}
    return ref_proposals.generate_proposals(*args, **settings)


class ProposalsNotClipped(Control):
    """Forgets to clip decoded boxes to the image."""

    @positional("generate_proposals", as_proposals)
    def generate_proposals(self, *args):
        anchors, logits, deltas = args[:3]
        result = _proposals(args)
        unclipped = ref.decode_boxes(anchors, deltas)
        scores = 1 / (1 + np.exp(-np.asarray(logits, float)))
        for row in result:  # put back the unclipped box of the anchor it came from
            source = int(
                np.argmin(
                    np.abs(scores - row[4])
                    + np.abs(ref.clip_boxes_to_image(unclipped, args[4]) - row[:4]).sum(1)
                )
            )
            row[:4] = unclipped[source]
        return result


class ProposalsNaiveSigmoid(Control):
    """Scores with e^x / (1 + e^x): NaN for an infinite logit."""

    @positional("generate_proposals", as_proposals)
    def generate_proposals(self, *args):
        result = _proposals(args)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logits = np.log(result[:, 4] / (1 - result[:, 4]))
            result[:, 4] = np.exp(logits) / (1 + np.exp(logits))
        return result


class ProposalsPostNAppliedTwice(Control):
    """Keeps post_nms_top_n + 1 proposals, unsorted (reversed)."""

    @positional("generate_proposals", as_proposals)
    def generate_proposals(self, *args):
        result = _proposals((*args[:6], args[6] + 1, *args[7:]))
        return result[::-1]


class ProposalsWithRawLogits(Control):
    """Reports the raw logit as the score instead of sigmoid(logit)."""

    @positional("generate_proposals", as_proposals)
    def generate_proposals(self, *args):
        result = _proposals(args)
        with np.errstate(divide="ignore"):
            result[:, 4] = np.log(result[:, 4] / (1 - result[:, 4]))
        return result


class ProposalsMinSizeIgnored(Control):
    """Never removes small boxes."""

    @positional("generate_proposals", as_proposals)
    def generate_proposals(self, *args):
        return _proposals((*args[:8], 0.0))


class ProposalsWithoutNms(Control):
    """Skips NMS (threshold 1 keeps everything)."""

    @positional("generate_proposals", as_proposals)
    def generate_proposals(self, *args):
        return _proposals((*args[:7], 1.0, *args[8:]))


class ProposalsKeepTheLowestScores(Control):
    """The post-NMS cut keeps the *last* post_n survivors (``[-post_n:]`` for ``[:post_n]``),
    still sorted: each post_n keeps a different tail, so no smaller one is a prefix."""

    @positional("generate_proposals", as_proposals)
    def generate_proposals(self, *args):
        everything = _proposals((*args[:6], len(args[0]), *args[7:]))
        return everything[len(everything) - min(int(args[6]), len(everything)) :]


class ProposalsGlobalTopN(Control):
    """Ranks all levels together (py-faster-rcnn's global top-N) while declaring per-level."""

    @positional("generate_proposals", as_proposals)
    def generate_proposals(self, *args):
        return _proposals(args, pipeline="global")
