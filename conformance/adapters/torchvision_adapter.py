"""torchvision behind the implementation interface (``--impl torchvision``).

Computes in float32 on the CPU, as torchvision's detection models do; conversions to and from
NumPy stay here. Operations are looked up at call time, so a patched torchvision is what is tested.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torchvision
from detspec.properties.interface import (
    Conventions,
    HeadLossGradient,
    ImplementationUnavailable,
    LossTerms,
    MatchResult,
    Proposals,
    RoiSample,
    RpnLossGradient,
    SupportInterval,
)
from detspec.reference.fourier import ZERO_FRACTION
from torch import nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead


class TorchvisionAdapter:
    name = "torchvision"
    conventions = Conventions(
        box_width="continuous",
        min_size_bound="inclusive",
        decode_clamp="upper",
        dtype="float32",
        anchor_offset="corner",
        anchor_rounding="round-corners",
        anchor_order="ratio-major",
        rpn_border="keep",
        rpn_loss_normaliser="sampled",
        rpn_smooth_l1_beta="1/9",
        proposal_pipeline="per-level",
        proposal_min_size_stage="after-top-n",
        roi_gt_candidates="added",
        roi_fill="shorter",
        roi_background_label="zero",
        roi_background_low="zero-only",
        roi_no_gt="all-background",
        roi_smooth_l1_beta="1/9",
    )

    #: the expectations file is one for every device; its entries may carry `when = {device = ...}`
    expectations_name = "torchvision"

    def __init__(self, dtype: torch.dtype = torch.float32, device: str = "cpu") -> None:
        self.dtype = dtype
        self.device = torch.device(device)
        self.facts = {"device": self.device.type}
        if self.device.type != "cpu":
            self.name = f"torchvision-{self.device.type}"
        where = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        self.version = f"torchvision {torchvision.__version__}, torch {torch.__version__}, {dtype}, {where}"

    def _tensor(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=self.dtype, device=self.device)

    def _indices(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=torch.int64, device=self.device)

    def box_area(self, boxes):
        return torchvision.ops.box_area(self._tensor(boxes)).detach().cpu().numpy()

    def box_iou(self, boxes1, boxes2):
        return torchvision.ops.box_iou(self._tensor(boxes1), self._tensor(boxes2)).detach().cpu().numpy()

    def clip_boxes_to_image(self, boxes, image_size):
        height, width = image_size
        return (
            torchvision.ops.clip_boxes_to_image(self._tensor(boxes), (height, width)).detach().cpu().numpy()
        )

    def remove_small_boxes(self, boxes, min_size):
        return torchvision.ops.remove_small_boxes(self._tensor(boxes), min_size).detach().cpu().numpy()

    def encode_boxes(self, reference_boxes, target_boxes, weights):
        # BoxCoder.encode_single(reference_boxes=targets, proposals=anchors): torchvision calls
        # the *targets* "reference boxes" and encodes them relative to the proposals.
        coder = det_utils.BoxCoder(tuple(weights))
        return (
            coder.encode_single(self._tensor(target_boxes), self._tensor(reference_boxes))
            .detach()
            .cpu()
            .numpy()
        )

    def decode_boxes(self, reference_boxes, deltas, weights, clamp):
        coder = det_utils.BoxCoder(tuple(weights), bbox_xform_clip=clamp)
        return coder.decode_single(self._tensor(deltas), self._tensor(reference_boxes)).detach().cpu().numpy()

    def nms(self, boxes, scores, iou_threshold):
        return (
            torchvision.ops.nms(self._tensor(boxes), self._tensor(scores), iou_threshold)
            .detach()
            .cpu()
            .numpy()
        )

    def batched_nms(self, boxes, scores, classes, iou_threshold):
        labels = self._indices(classes)
        keep = torchvision.ops.batched_nms(self._tensor(boxes), self._tensor(scores), labels, iou_threshold)
        return keep.detach().cpu().numpy()

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        """``AnchorGenerator.grid_anchors`` with explicit strides. (``forward`` infers each stride as
        padded image size // feature size; the explicit form tests the anchor geometry itself.)"""
        generator = AnchorGenerator(
            sizes=tuple(tuple(s) for s in sizes), aspect_ratios=tuple(tuple(r) for r in ratios)
        )
        generator.cell_anchors = [a.to(self.dtype).to(self.device) for a in generator.cell_anchors]
        grid_sizes = [[int(h), int(w)] for h, w in feature_sizes]
        level_strides = [
            [torch.tensor(int(along_y)), torch.tensor(int(along_x))] for along_y, along_x in strides
        ]
        levels = generator.grid_anchors(grid_sizes, level_strides)
        return torch.cat(levels).detach().cpu().numpy() if levels else np.zeros((0, 4))

    def _assign(self, anchors, gt_boxes, high, low):
        rpn = rpn_with_thresholds(high, low)
        anchors_t, gt_t = self._tensor(anchors), self._tensor(gt_boxes)
        (labels,), (matched_boxes,) = rpn.assign_targets_to_anchors([anchors_t], [{"boxes": gt_t}])
        return rpn, anchors_t, gt_t, labels, matched_boxes

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        """``RegionProposalNetwork.assign_targets_to_anchors`` for the labels, and the same
        ``proposal_matcher`` call it makes for the matched GT index (the image size is unused:
        torchvision keeps anchors that cross the border)."""
        rpn, anchors_t, gt_t, labels, _ = self._assign(anchors, gt_boxes, high, low)
        matched = torch.full_like(labels, -1)
        if len(gt_t):
            matches = rpn.proposal_matcher(rpn.box_similarity(gt_t, anchors_t))
            matched = torch.where(labels == 1, matches.to(labels.dtype), matched)
        return MatchResult(labels.to(torch.int64).cpu().numpy(), matched.to(torch.int64).cpu().numpy())

    def rpn_regression_targets(self, anchors, gt_boxes, image_size, high, low):
        rpn, anchors_t, _, _, matched_boxes = self._assign(anchors, gt_boxes, high, low)
        return rpn.box_coder.encode([matched_boxes], [anchors_t])[0].detach().cpu().numpy()

    def sample_balanced(self, labels, batch_size, positive_fraction, seed):
        """``BalancedPositiveNegativeSampler`` draws from torch's global generator: seeded here,
        inside a forked RNG state so that the caller's stream is untouched."""
        sampler = det_utils.BalancedPositiveNegativeSampler(int(batch_size), positive_fraction)
        labels_t = self._indices(labels)
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            (positive,), (negative,) = sampler([labels_t])
        marks = torch.full_like(labels_t, -1)
        marks[positive.bool()] = 1
        marks[negative.bool()] = 0
        return marks.detach().cpu().numpy().astype(np.int64)

    def _loss(self, logits, deltas, sampled, targets, requires_grad=False):
        """``compute_loss`` with a pass-through sampler (batch = N, fraction 1: it takes every
        anchor labelled 1 or 0), so that ``sampled`` decides what enters the loss."""
        rpn = rpn_with_thresholds(0.7, 0.3)
        rpn.fg_bg_sampler = det_utils.BalancedPositiveNegativeSampler(max(len(sampled), 1), 1.0)
        objectness = self._tensor(logits).requires_grad_(requires_grad)
        pred = self._tensor(deltas).requires_grad_(requires_grad)
        labels = [self._tensor(sampled)]
        cls, reg = rpn.compute_loss(objectness, pred, labels, [self._tensor(targets)])
        return objectness, pred, cls, reg

    def rpn_loss(self, logits, deltas, sampled, targets, anchor_locations):
        _, _, cls, reg = self._loss(logits, deltas, sampled, targets)
        return LossTerms(cls.item(), reg.item())

    def rpn_loss_gradient(self, logits, deltas, sampled, targets, anchor_locations):
        objectness, pred, cls, reg = self._loss(logits, deltas, sampled, targets, True)
        d_logits, d_deltas = torch.autograd.grad(cls + reg, [objectness, pred], allow_unused=True)
        d_logits = torch.zeros_like(objectness) if d_logits is None else d_logits
        d_deltas = torch.zeros_like(pred) if d_deltas is None else d_deltas
        return RpnLossGradient(d_logits.detach().cpu().numpy(), d_deltas.detach().cpu().numpy())

    def generate_proposals(
        self,
        anchors,
        logits,
        deltas,
        levels,
        image_size,
        pre_nms_top_n,
        post_nms_top_n,
        nms_threshold,
        min_size,
    ):
        """``box_coder.decode`` (as ``RegionProposalNetwork.forward``) then ``filter_proposals``
        with the given settings for both training and testing, ``score_thresh`` 0."""
        rpn = RegionProposalNetwork(
            AnchorGenerator(),
            RPNHead(1, 9),
            0.7,
            0.3,
            256,
            0.5,
            {"training": int(pre_nms_top_n), "testing": int(pre_nms_top_n)},
            {"training": int(post_nms_top_n), "testing": int(post_nms_top_n)},
            float(nms_threshold),
            score_thresh=0.0,
        )
        rpn.min_size = float(min_size)
        anchors_t = self._tensor(anchors)
        decoded = rpn.box_coder.decode(self._tensor(deltas), [anchors_t]).view(1, -1, 4)
        per_level = np.bincount(np.asarray(levels, dtype=np.int64)).tolist() if len(levels) else [0]
        height, width = image_size
        (boxes,), (scores,) = rpn.filter_proposals(
            decoded,
            self._tensor(logits).view(1, -1),
            [(int(height), int(width))],
            [n for n in per_level if n] or [0],
        )
        return Proposals(boxes.detach().cpu().numpy(), scores.detach().cpu().numpy())

    def sample_rois(
        self,
        proposals,
        gt_boxes,
        gt_labels,
        num_classes,
        batch_size,
        positive_fraction,
        fg_threshold,
        bg_high,
        bg_low,
        weights,
        seed,
    ):
        """``RoIHeads.select_training_samples`` (GT boxes appended, ``Matcher(fg, bg_high)``,
        ``BalancedPositiveNegativeSampler``, ``BoxCoder(weights)``), seeded like
        :meth:`sample_balanced`. torchvision has no lower background threshold: every RoI below
        ``bg_high`` is background, so ``bg_low > 0`` cannot be expressed and is refused."""
        if bg_low > 0:
            raise ValueError(
                f"torchvision's RoIHeads has no lower background IoU threshold; bg_low={bg_low} "
                "cannot be expressed (every RoI with IoU < bg_iou_thresh is background)"
            )
        heads = RoIHeads(
            None,
            None,
            None,
            fg_iou_thresh=float(fg_threshold),
            bg_iou_thresh=float(bg_high),
            batch_size_per_image=int(batch_size),
            positive_fraction=float(positive_fraction),
            bbox_reg_weights=tuple(float(w) for w in weights),
            score_thresh=0.05,
            nms_thresh=0.5,
            detections_per_img=100,
        )
        target = {
            "boxes": self._tensor(gt_boxes).reshape(-1, 4),
            "labels": self._indices(gt_labels),
        }
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            (rois,), (matched,), (labels,), (targets,) = heads.select_training_samples(
                [self._tensor(proposals).reshape(-1, 4)], [target]
            )
        matched = torch.where(labels > 0, matched, -1)  # torchvision clamps background to GT 0
        return RoiSample(
            *(t.detach().cpu().numpy() for t in (rois, labels.to(torch.int64), matched, targets))
        )

    def _head_loss(self, class_logits, box_regression, labels, targets, requires_grad=False):
        logits = self._tensor(class_logits).requires_grad_(requires_grad)
        boxes = self._tensor(box_regression).requires_grad_(requires_grad)
        labels_t = self._indices(labels)
        cls, box = fastrcnn_loss(logits, boxes, [labels_t], [self._tensor(targets).reshape(-1, 4)])
        return logits, boxes, cls, box

    def fast_rcnn_loss(self, class_logits, box_regression, labels, targets):
        _, _, cls, box = self._head_loss(class_logits, box_regression, labels, targets)
        return LossTerms(cls.item(), box.item())

    def fast_rcnn_loss_gradient(self, class_logits, box_regression, labels, targets):
        logits, boxes, cls, box = self._head_loss(class_logits, box_regression, labels, targets, True)
        d_logits, d_boxes = torch.autograd.grad(cls + box, [logits, boxes], allow_unused=True)
        d_logits = torch.zeros_like(logits) if d_logits is None else d_logits
        d_boxes = torch.zeros_like(boxes) if d_boxes is None else d_boxes
        return HeadLossGradient(d_logits.detach().cpu().numpy(), d_boxes.detach().cpu().numpy())

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        pooled = torchvision.ops.roi_align(
            self._tensor(features)[None],
            [self._tensor(rois).reshape(-1, 4)],
            tuple(int(v) for v in output_size),
            float(spatial_scale),
            int(sampling_ratio),
            bool(aligned),
        )
        return pooled.detach().cpu().numpy()

    def roi_pool(self, features, rois, output_size, spatial_scale):
        pooled = torchvision.ops.roi_pool(
            self._tensor(features)[None],
            [self._tensor(rois).reshape(-1, 4)],
            tuple(int(v) for v in output_size),
            float(spatial_scale),
        )
        return pooled.detach().cpu().numpy()

    def multiscale_roi_align(self, features, rois, output_size, sampling_ratio, image_size):
        """``MultiScaleRoIAlign`` over maps named "0", "1", ...; it infers each level's scale from
        the map and image sizes and assigns RoIs with its ``LevelMapper``."""
        names = [str(i) for i in range(len(features))]
        pooler = torchvision.ops.MultiScaleRoIAlign(
            names, tuple(int(v) for v in output_size), int(sampling_ratio)
        )
        maps = {name: self._tensor(f)[None] for name, f in zip(names, features, strict=True)}
        height, width = image_size
        pooled = pooler(maps, [self._tensor(rois).reshape(-1, 4)], [(int(height), int(width))])
        return pooled.detach().cpu().numpy()

    # Fourier operations with torch.fft (the torch half of the numpy.fft / torch.fft pair)

    def _spectrum(self, image) -> torch.Tensor:
        return torch.fft.fft2(self._tensor(image))

    @staticmethod
    def _unit_phase(spectrum: torch.Tensor) -> torch.Tensor:
        magnitude = spectrum.abs()
        kept = magnitude > ZERO_FRACTION * magnitude.max()
        return torch.where(kept, spectrum / torch.where(kept, magnitude, 1.0), 0.0)

    def fft2(self, image):
        return self._spectrum(image).detach().cpu().numpy()

    def amplitude_spectrum(self, image):
        return self._spectrum(image).abs().detach().cpu().numpy()

    def phase_spectrum(self, image):
        return torch.angle(self._unit_phase(self._spectrum(image))).detach().cpu().numpy()

    def phase_only(self, image):
        return torch.fft.ifft2(self._unit_phase(self._spectrum(image))).real.detach().cpu().numpy()

    def amplitude_only(self, image):
        return torch.fft.ifft2(self._spectrum(image).abs().to(torch.complex64)).real.detach().cpu().numpy()

    def hybrid(self, phase_donor, amplitude_donor):
        spectrum = self._spectrum(amplitude_donor).abs() * self._unit_phase(self._spectrum(phase_donor))
        return torch.fft.ifft2(spectrum).real.detach().cpu().numpy()

    def receptive_field_support(self, layers, input_size, cells):
        model = nn.Sequential(*(_unit_layer(*layer) for layer in layers))
        return _as_interval(_gradient_support(model, 1, int(input_size), cells))

    def backbone_layers(self, name):
        return [layer for _, layer in _backbone_layers(_backbone(name))]

    def backbone_receptive_field_support(self, name, input_size, cells):
        return _as_interval(_backbone_support(name, int(input_size), tuple(int(c) for c in cells)))

    def repro_snippet(self, operation: str, arguments: dict) -> str | None:
        """The call in torchvision's own terms, for the operations that are one torchvision
        function (the others are reproduced through this adapter)."""
        return torchvision_snippet(operation, arguments, self.device.type)


def _as_interval(supports: np.ndarray) -> SupportInterval:
    rows = np.asarray(supports, dtype=np.int64).reshape(-1, 2)
    return SupportInterval(rows[:, 0], rows[:, 1])


def _tensor_literal(value, dtype: str = "torch.float32") -> str:
    from detspec.conformance.repro import literal

    body = literal(np.asarray(value).tolist())
    return f"torch.tensor({body}, dtype={dtype})"


def torchvision_snippet(operation: str, arguments: dict, device: str = "cpu") -> str | None:
    a = {k: v for k, v in arguments.items()}
    t = _tensor_literal
    calls = {
        "box_area": lambda: f"torchvision.ops.box_area({t(a['boxes'])})",
        "box_iou": lambda: f"torchvision.ops.box_iou({t(a['boxes1'])}, {t(a['boxes2'])})",
        "clip_boxes_to_image": lambda: (
            f"torchvision.ops.clip_boxes_to_image({t(a['boxes'])}, {tuple(int(v) for v in a['image_size'])})"
        ),
        "remove_small_boxes": lambda: (
            f"torchvision.ops.remove_small_boxes({t(a['boxes'])}, {a['min_size']!r})"
        ),
        "nms": lambda: f"torchvision.ops.nms({t(a['boxes'])}, {t(a['scores'])}, {a['iou_threshold']!r})",
        "batched_nms": lambda: (
            f"torchvision.ops.batched_nms({t(a['boxes'])}, {t(a['scores'])}, "
            f"{t(a['classes'], 'torch.int64')}, {a['iou_threshold']!r})"
        ),
        "roi_align": lambda: (
            f"torchvision.ops.roi_align({t(a['features'])}[None], [{t(a['rois'])}], "
            f"{tuple(int(v) for v in a['output_size'])}, {a['spatial_scale']!r}, {int(a['sampling_ratio'])}, "
            f"{bool(a['aligned'])})"
        ),
        "roi_pool": lambda: (
            f"torchvision.ops.roi_pool({t(a['features'])}[None], [{t(a['rois'])}], "
            f"{tuple(int(v) for v in a['output_size'])}, {a['spatial_scale']!r})"
        ),
        "fast_rcnn_loss": lambda: (
            "torchvision.models.detection.roi_heads.fastrcnn_loss("
            f"{t(a['class_logits'])}, {t(a['box_regression'])}, [{t(a['labels'], 'torch.int64')}], "
            f"[{t(a['targets'])}])"
        ),
    }
    if operation not in calls:
        return None
    move = "" if device == "cpu" else f"  # on {device}: move the tensors with .to('{device}')"
    return f"import torch\nimport torchvision\n\nprint({calls[operation]()}){move}\n"


def rpn_with_thresholds(high: float, low: float) -> RegionProposalNetwork:
    """A torchvision RPN with the given IoU thresholds (the head and anchors are not used here)."""
    return RegionProposalNetwork(
        AnchorGenerator(),
        RPNHead(1, 9),
        fg_iou_thresh=high,
        bg_iou_thresh=low,
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_top_n={"training": 1, "testing": 1},
        post_nms_top_n={"training": 1, "testing": 1},
        nms_thresh=0.7,
    )


#: The backbones and where they are cut: VGG-16 after conv5_3 (its ReLU), ResNet-50 after layer3
#: (the C4 feature map of Faster R-CNN with a ResNet, stride 16).
BACKBONES = {"vgg16": "features.29", "resnet50": "layer3"}


def _backbone(name: str) -> nn.Module:
    if name == "vgg16":
        # vgg16().features without building the 100M-parameter classifier: the same layers
        return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])[:30]
    if name == "resnet50":
        net = torchvision.models.resnet50(weights=None)
        return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
    raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")


@functools.cache
def _measurable_backbone(name: str) -> nn.Module:
    """Built once per process: construction costs more than a measurement."""
    return _measurable(_backbone(name)).to(torch.float64)


@functools.cache
def _backbone_support(name: str, input_size: int, cells: tuple[int, ...]) -> np.ndarray:
    """Deterministic and costly (a forward and backward pass of the backbone): measured once."""
    return _gradient_support(_measurable_backbone(name), 3, input_size, cells)


def _backbone_layers(module: nn.Module) -> list[tuple[str, list]]:
    """Convolutions and poolings along the main path, in order (a ResNet's shortcut projections,
    ``downsample``, run in parallel with the main path and are left out)."""
    layers = []
    for path, sub in module.named_modules():
        if "downsample" in path.split("."):
            continue
        if isinstance(sub, nn.Conv2d):
            layers.append(
                (path, ["conv", sub.kernel_size[0], sub.stride[0], sub.padding[0], sub.dilation[0]])
            )
        elif isinstance(sub, nn.MaxPool2d):
            layers.append(
                (
                    path,
                    ["pool", _int(sub.kernel_size), _int(sub.stride), _int(sub.padding), _int(sub.dilation)],
                )
            )
    return layers


def _int(value) -> int:
    return int(value[0] if isinstance(value, tuple | list) else value)


def _unit_layer(kind: str, kernel: int, stride: int, padding: int, dilation: int) -> nn.Module:
    if kind == "pool":
        return nn.AvgPool2d(kernel, stride, padding)
    conv = nn.Conv2d(1, 1, kernel, stride, padding, dilation, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    return conv


def _measurable(module: nn.Module) -> nn.Module:
    """Make the gradient's support equal the receptive field: positive weights (no cancellation),
    average instead of max pooling (a max-pool passes gradient to one element of its window
    only, though its output depends on all of them), batch norm in eval mode (identity)."""
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            fan_in = sub.in_channels * sub.kernel_size[0] * sub.kernel_size[1] // sub.groups
            nn.init.constant_(sub.weight, 1.0 / fan_in)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
    for parent in module.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
    return module.eval()


def _gradient_support(model: nn.Module, channels: int, size: int, cells) -> np.ndarray:
    image = torch.ones(1, channels, size, size, dtype=torch.float64, requires_grad=True)
    output = model.to(torch.float64)(image)  # no-op for an already converted model
    supports = []
    for cell in cells:
        (gradient,) = torch.autograd.grad(output[0, :, int(cell), int(cell)].sum(), image, retain_graph=True)
        columns = torch.nonzero(gradient[0].abs().sum(dim=(0, 1)))[:, 0]
        supports.append([int(columns.min()), int(columns.max())])
    return np.asarray(supports, dtype=np.float64)


def torchvision_float32() -> TorchvisionAdapter:
    return TorchvisionAdapter(torch.float32)


def torchvision_cuda() -> TorchvisionAdapter:
    """The same operations on the GPU (``--impl torchvision-cuda``): torchvision's CUDA kernels."""
    if not torch.cuda.is_available():
        raise ImplementationUnavailable("torch.cuda.is_available() is False: no CUDA device")
    return TorchvisionAdapter(torch.float32, "cuda")
