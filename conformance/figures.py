"""Pictures for the HTML report, as self-contained inline SVG (no plotting dependency)."""

from __future__ import annotations

import html

import numpy as np
from detspec.properties.strategies.anchors import PAPER
from detspec.reference.receptive_field import RPN_CONV, VGG16_CONV5_3, receptive_field

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def _rect(box, colour: str, width: float = 2.0, dash: str = "", fill: str = "none", title: str = ""):
    x1, y1, x2, y2 = (float(v) for v in box)
    dashes = f" stroke-dasharray='{dash}'" if dash else ""
    tooltip = f"<title>{html.escape(title)}</title>" if title else ""
    return (
        f"<rect x='{x1:.1f}' y='{y1:.1f}' width='{x2 - x1:.1f}' height='{y2 - y1:.1f}' "
        f"fill='{fill}' stroke='{colour}' stroke-width='{width}'{dashes}>{tooltip}</rect>"
    )


def _svg(view: tuple[float, float, float, float], body: list[str], pixels: int = 760) -> str:
    x, y, w, h = view
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{pixels}' "
        f"height='{pixels * h / w:.0f}' viewBox='{x:.1f} {y:.1f} {w:.1f} {h:.1f}' "
        f"style='background:#fff;border:1px solid #ccc'>{''.join(body)}</svg>"
    )


def anchors_and_receptive_field(impl, cell: tuple[int, int] = (31, 18)) -> dict[str, str]:
    """The default configuration (62 x 37 map, stride 16, the paper's nine anchors): the anchors
    of one cell as the implementation generates them, and that cell's receptive field through
    VGG-16 conv5_3 + the RPN's 3x3 conv (228 px), on the 992 x 592 image."""
    (height, width), stride = PAPER["feature_sizes"][0], PAPER["strides"][0]
    anchors = impl.grid_anchors(
        PAPER["feature_sizes"], [[s, s] for s in PAPER["strides"]], PAPER["sizes"], PAPER["ratios"]
    )
    per_cell = len(PAPER["sizes"][0]) * len(PAPER["ratios"][0])
    x, y = cell
    mine = anchors.reshape(height, width, per_cell, 4)[y, x]
    field = receptive_field([*VGG16_CONV5_3, RPN_CONV])
    shift = 0.0 if impl.conventions.box_width == "legacy" else 0.5  # pixel index -> continuous
    centre = np.array([field.start + shift + x * field.jump, field.start + shift + y * field.jump])
    half = field.size / 2
    image = (0.0, 0.0, float(width * stride), float(height * stride))
    everything = np.vstack([mine, [image], [[*(centre - half), *(centre + half)]]])
    margin = 20.0
    low, high = everything[:, :2].min(0) - margin, everything[:, 2:].max(0) + margin
    body = [
        _rect(image, "#444", 3, fill="#f4f4f4", title=f"image {image[2]:g} x {image[3]:g}"),
        _rect(
            (x * stride, y * stride, (x + 1) * stride, (y + 1) * stride),
            "#000",
            1.5,
            title=f"cell ({x}, {y})",
        ),
        _rect(
            (*(centre - half), *(centre + half)),
            "#000",
            4,
            dash="12 6",
            title=f"receptive field {field.size} px (VGG-16 conv5_3 + RPN 3x3 conv)",
        ),
    ]
    for index, box in enumerate(mine):
        w, h = box[2] - box[0], box[3] - box[1]
        body.append(_rect(box, PALETTE[index % len(PALETTE)], 2.5, title=f"anchor {index}: {w:g} x {h:g}"))
    anchor_centre = (mine[0, :2] + mine[0, 2:]) / 2
    body.append(
        f"<circle cx='{anchor_centre[0]:.1f}' cy='{anchor_centre[1]:.1f}' r='5' fill='#d62728'>"
        f"<title>anchor centre {anchor_centre.tolist()}</title></circle>"
    )
    body.append(
        f"<circle cx='{centre[0]:.1f}' cy='{centre[1]:.1f}' r='5' fill='none' stroke='#000' "
        f"stroke-width='2'><title>receptive-field centre {centre.tolist()}</title></circle>"
    )
    caption = (
        f"{impl.name}: the {per_cell} anchors of cell ({x}, {y}) on the {image[2]:g} x {image[3]:g} "
        f"image (62 x 37 map, stride 16; coloured), the cell itself (small black square), and its "
        f"receptive field through VGG-16 conv5_3 + the RPN's 3x3 conv ({field.size} px, dashed). "
        f"Red dot: anchor centre {anchor_centre.tolist()}; open circle: receptive-field centre "
        f"{centre.tolist()} ({impl.conventions.anchor_offset} offset). Hover for sizes."
    )
    return {
        "title": "Anchors of one cell and its receptive field",
        "caption": caption,
        "svg": _svg((*low, *(high - low)), body),
    }


LABEL_COLOURS = {1: "#2ca02c", 0: "#d62728", -1: "#9a9a9a"}


def matching_counterexample(impl, example: dict) -> dict[str, str] | None:
    """The image, the GT boxes (black) and the anchors coloured by the label the implementation
    gave them (green 1, red 0, grey -1), for a minimal input of an RPN-matching property."""
    if not {"anchors", "gt_boxes", "image_size", "high", "low"} <= set(example):
        return None
    anchors, gt_boxes = np.asarray(example["anchors"]), np.asarray(example["gt_boxes"]).reshape(-1, 4)
    labels = impl.match_anchors(
        anchors, gt_boxes, tuple(example["image_size"]), example["high"], example["low"]
    ).labels
    height, width = example["image_size"]
    everything = np.vstack([anchors, gt_boxes, [[0, 0, width, height]]])
    low, high = everything[:, :2].min(0), everything[:, 2:].max(0)
    margin = 0.05 * max(float((high - low).max()), 1.0)
    stroke = max(float((high - low).max()) / 300, 0.05)
    body = [_rect((0, 0, width, height), "#444", stroke, fill="#f4f4f4", title="image")]
    for box in gt_boxes:
        body.append(_rect(box, "#000", 3 * stroke, title=f"GT {box.tolist()}"))
    for index, (box, label) in enumerate(zip(anchors, labels, strict=True)):
        body.append(
            _rect(
                box,
                LABEL_COLOURS.get(int(label), "#ff00ff"),
                2 * stroke,
                dash="4 2",
                title=f"anchor {index} {box.tolist()}: label {int(label)}",
            )
        )
    caption = (
        f"{impl.name} on the minimal input: image (grey), GT boxes (black), anchors "
        f"(dashed) coloured by the label it gave them: green 1, red 0, grey -1."
    )
    view = (*(low - margin), *(high - low + 2 * margin))
    return {"title": "Counterexample", "caption": caption, "svg": _svg(view, body, pixels=420)}


def _png_data_uri(image: np.ndarray, zoom: int = 4) -> str:
    """A grey-level PNG (min-max scaled, nearest-neighbour zoom) as a data URI, via Pillow
    (installed with torchvision)."""
    import base64
    import io

    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    span = values.max() - values.min()
    grey = np.zeros_like(values) if span == 0 else (values - values.min()) / span
    pixels = Image.fromarray((grey * 255).round().astype(np.uint8)).resize(
        (values.shape[1] * zoom, values.shape[0] * zoom), Image.NEAREST
    )
    buffer = io.BytesIO()
    pixels.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def fourier_reconstructions(impl) -> dict[str, str]:
    """For two shape images a and b (the declared family, seed 0): the original, phase-only,
    amplitude-only, and the hybrids, with each one's edge agreement, computed by ``impl``."""
    from detspec.reference.fourier import edge_agreement, shapes_image

    rng = np.random.default_rng(0)
    a, b = shapes_image(rng, 64), shapes_image(rng, 64)
    rows = []
    for name, image, other in (("a", a, b), ("b", b, a)):
        cells = [
            (f"image {name}", image, 1.0),
            ("phase-only", impl.phase_only(image), None),
            ("amplitude-only", impl.amplitude_only(image), None),
            (f"hybrid: phase of {name}, amplitude of the other", impl.hybrid(image, other), None),
        ]
        html_cells = []
        for title, picture, _ in cells:
            score = edge_agreement(image, picture)
            html_cells.append(
                f"<td style='text-align:center'><img src='{_png_data_uri(picture)}' alt='{title}'>"
                f"<br>{html.escape(title)}<br>edge agreement with {name}: {score:.2f}</td>"
            )
        rows.append("<tr>" + "".join(html_cells) + "</tr>")
    caption = (
        f"{impl.name}: two 64 x 64 images built from shapes (seed 0). Phase-only keeps "
        "where the edges are; amplitude-only keeps none of it; each hybrid follows the "
        "image whose phase it has."
    )
    return {
        "title": "Phase vs amplitude",
        "caption": caption,
        "svg": f"<table style='border:0'>{''.join(rows)}</table>",
    }


def proposal_stages(impl) -> dict[str, str]:
    """A small example of the proposal pipeline: anchors (grey, dashed), the decoded boxes (blue),
    the same clipped to the image (orange), and the proposals the implementation keeps (green)."""
    from detspec.reference.boxes import decode_boxes
    from detspec.reference.proposals import decode_and_clip

    anchors = np.array(
        [
            [-30.0, 20, 90, 100],
            [40, 30, 120, 90],
            [50, 40, 130, 100],
            [150, 100, 230, 180],
            [20, 120, 60, 150],
            [100, 10, 140, 40],
        ]
    )
    deltas = np.array(
        [
            [0.1, 0.0, 0.2, 0.1],
            [0.05, 0.1, 0.0, 0.0],
            [0.0, 0.0, 0.1, 0.1],
            [0.2, 0.1, 0.3, 0.2],
            [0.0, 0.0, -2.5, -2.0],
            [0.1, -0.2, 0.0, 0.3],
        ]
    )
    logits = np.array([2.0, 1.5, 1.2, 1.0, 0.8, -0.5])
    image_size, settings = (160.0, 200.0), (5, 4, 0.5, 8.0)
    proposals = impl.generate_proposals(
        anchors, logits, deltas, np.zeros(6, dtype=np.int64), image_size, *settings
    )
    kept = np.concatenate([proposals.boxes, proposals.scores[:, None]], axis=1)
    decoded = decode_boxes(anchors, deltas)
    clipped = decode_and_clip(anchors, deltas, image_size)
    everything = np.vstack([anchors, decoded, [[0, 0, image_size[1], image_size[0]]]])
    low, high = everything[:, :2].min(0) - 10, everything[:, 2:].max(0) + 10
    body = [_rect((0, 0, image_size[1], image_size[0]), "#444", 1.5, fill="#f4f4f4", title="image")]
    body += [_rect(box, "#999", 1, dash="4 3", title=f"anchor {i}") for i, box in enumerate(anchors)]
    body += [_rect(box, "#1f77b4", 1, title=f"decoded {i}") for i, box in enumerate(decoded)]
    body += [_rect(box, "#ff7f0e", 1.5, title=f"clipped {i}") for i, box in enumerate(clipped)]
    body += [_rect(row[:4], "#2ca02c", 3, title=f"kept, score {row[4]:.3f}") for row in kept]
    caption = (
        f"{impl.name}: six anchors (grey, dashed) with their regression applied (blue), "
        f"clipped to the 200 x 160 image (orange), and the {len(kept)} proposals it keeps "
        "(green) with pre-NMS top 5, post-NMS top 4, NMS at 0.5 and min size 8. Decoding and "
        "clipping are drawn by the reference; the kept boxes come from the implementation."
    )
    return {
        "title": "Proposal generation, step by step",
        "caption": caption,
        "svg": _svg((*low, *(high - low)), body, pixels=560),
    }


ROI_KIND_COLOURS = {"foreground": "#2ca02c", "background": "#d62728", "unused": "#9a9a9a"}


def roi_sampling_counterexample(impl, example: dict) -> dict[str, str] | None:
    """The GT boxes (black) and the RoI candidates (dashed) coloured by what the implementation
    did with them (green foreground, red background, grey not sampled), for a minimal input of a
    RoI-sampling property."""
    from detspec.properties.roi_head import ARGUMENTS
    from detspec.reference.roi_targets import background_class, roi_candidates

    if not set(ARGUMENTS) <= set(example):
        return None
    sample = impl.sample_rois(**{k: example[k] for k in ARGUMENTS})
    rows = np.concatenate([sample.boxes, sample.labels[:, None]], axis=1)
    gt_boxes = np.asarray(example["gt_boxes"], dtype=np.float64).reshape(-1, 4)
    candidates = roi_candidates(example["proposals"], gt_boxes, impl.conventions.roi_gt_candidates)
    background = background_class(int(example["num_classes"]), impl.conventions.roi_background_label)
    kinds = {}
    for row in rows:
        kinds[tuple(row[:4])] = "background" if int(row[4]) == background else "foreground"
    everything = (
        np.vstack([candidates, gt_boxes, rows[:, :4]]) if len(rows) else np.vstack([candidates, gt_boxes])
    )
    if not len(everything):
        return None
    low, high = everything[:, :2].min(0), everything[:, 2:].max(0)
    margin = 0.05 * max(float((high - low).max()), 1.0)
    stroke = max(float((high - low).max()) / 300, 0.05)
    body = [_rect(box, "#000", 3 * stroke, title=f"GT {i} {box.tolist()}") for i, box in enumerate(gt_boxes)]
    drawn = set()
    for box in np.vstack([candidates, rows[:, :4]]) if len(rows) else candidates:
        key = tuple(box)
        if key in drawn:
            continue
        drawn.add(key)
        kind = kinds.get(key, "unused")
        body.append(
            _rect(box, ROI_KIND_COLOURS[kind], 2 * stroke, dash="4 2", title=f"RoI {list(key)}: {kind}")
        )
    caption = (
        f"{impl.name} on the minimal input: GT boxes (black) and RoI candidates (dashed: the "
        f"proposals{', then the GT boxes' if impl.conventions.roi_gt_candidates == 'added' else ''}) "
        "coloured by what it sampled: green foreground, red background, grey not sampled. Thresholds: "
        f"fg >= {example['fg_threshold']}, background in [{example['bg_low']}, {example['bg_high']})."
    )
    view = (*(low - margin), *(high - low + 2 * margin))
    return {"title": "Counterexample", "caption": caption, "svg": _svg(view, body, pixels=420)}


def counterexample_picture(impl, example: dict) -> dict[str, str] | None:
    """A picture of a minimal input, for the properties that have one (matching, RoI sampling)."""
    if impl.provides("match_anchors") and {"anchors", "gt_boxes", "high", "low"} <= set(example):
        return matching_counterexample(impl, example)
    if impl.provides("sample_rois") and "proposals" in example:
        return roi_sampling_counterexample(impl, example)
    return None


def roi_align_grid(impl) -> dict[str, str]:
    """One RoI on a 6 x 5 map, 2 x 2 bins, sampling ratio 2: the cells (grey levels: the map's
    values), the bins and the sample points for ``aligned=False`` and ``aligned=True``, with the
    implementation's pooled values, and the cells RoI max pooling takes for the same RoI."""
    from detspec.reference.roi_pooling import align_sample_points, round_half_away

    height, width, cell = 5, 6, 60.0
    features = (np.arange(height * width, dtype=np.float64).reshape(1, height, width) * 7) % 11
    roi = np.array([[1.3, 0.8, 4.6, 3.9]])
    panels = []
    for title, aligned in (("RoIAlign, aligned=False", False), ("RoIAlign, aligned=True", True)):
        pooled = impl.roi_align(features, roi, (2, 2), 1.0, 2, aligned)[0, 0]
        ys, xs = align_sample_points(roi[0], (2, 2), 1.0, 2, aligned)
        shift = 0.0 if aligned else 0.5  # index coordinates -> cell-area coordinates
        start = roi[0] - (0.5 if aligned else 0.0) + shift
        box = start.copy()
        if not aligned:
            box[2:] = np.maximum(box[2:], box[:2] + 1)
        panels.append((title, pooled, (ys + shift, xs + shift), box, None))
    pooled = impl.roi_pool(features, roi, (2, 2), 1.0)[0, 0]
    corners = round_half_away(roi[0]).astype(int)
    quantised = np.array([corners[0], corners[1], corners[2] + 1, corners[3] + 1], dtype=float)
    panels.append(("RoIPool (quantised)", pooled, None, quantised, roi[0]))
    svgs = []
    for title, pooled, samples, box, original in panels:
        body = []
        for i in range(height):
            for j in range(width):
                grey = int(255 - features[0, i, j] * 15)
                body.append(
                    f"<rect x='{j * cell}' y='{i * cell}' width='{cell}' height='{cell}' "
                    f"fill='rgb({grey},{grey},{grey})' stroke='#fff'><title>cell ({i}, {j}) = "
                    f"{features[0, i, j]:g}</title></rect>"
                )
        scaled = box * cell
        body.append(_rect(scaled, "#1f77b4", 3, title=f"RoI as pooled {box.tolist()}"))
        mid = (scaled[:2] + scaled[2:]) / 2
        body.append(f"<line x1='{mid[0]}' y1='{scaled[1]}' x2='{mid[0]}' y2='{scaled[3]}' stroke='#1f77b4'/>")
        body.append(f"<line x1='{scaled[0]}' y1='{mid[1]}' x2='{scaled[2]}' y2='{mid[1]}' stroke='#1f77b4'/>")
        if original is not None:
            body.append(_rect(original * cell, "#ff7f0e", 2, dash="6 4", title="RoI before rounding"))
        if samples is not None:
            ys, xs = samples
            for y in ys.ravel():
                for x in xs.ravel():
                    body.append(f"<circle cx='{x * cell:.1f}' cy='{y * cell:.1f}' r='4' fill='#d62728'/>")
        for (p, q), value in np.ndenumerate(pooled):
            bx = scaled[0] + (q + 0.5) * (scaled[2] - scaled[0]) / 2
            by = scaled[1] + (p + 0.5) * (scaled[3] - scaled[1]) / 2
            body.append(
                f"<text x='{bx:.1f}' y='{by + 20:.1f}' font-size='16' text-anchor='middle' "
                f"fill='#000' font-family='sans-serif'>{value:.2f}</text>"
            )
        body.append(
            f"<text x='4' y='{height * cell + 22}' font-size='18' font-family='sans-serif'>{title}</text>"
        )
        svgs.append(_svg((-10.0, -10.0, width * cell + 20, height * cell + 40), body, pixels=300))
    caption = (
        f"{impl.name}: the RoI (1.3, 0.8)-(4.6, 3.9) on a 6 x 5 map (spatial scale 1; grey levels are "
        "the values), 2 x 2 bins (blue) with the pooled values. Cells are drawn as unit squares. "
        "aligned=False treats cell (i, j) as the point (j, i), so the RoI lands half a cell down "
        "and right of where it is drawn with aligned=True; red dots are the bilinear samples "
        "(sampling ratio 2). RoIPool rounds the corners (orange dashed: before rounding) and takes "
        "the max over whole cells."
    )
    return {
        "title": "RoIAlign sampling grid and RoIPool quantisation",
        "caption": caption,
        "svg": "".join(svgs),
    }
