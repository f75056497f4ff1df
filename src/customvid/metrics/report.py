"""Evaluation reports: per-video and aggregate JSON, and one self-contained HTML file (tables, inline PNG
contact sheets, inline SVG plots: trajectory vs target boxes, per-attribute bars). No plotting library."""

from __future__ import annotations

import base64
import html
import io as _io
import math
from pathlib import Path

import numpy as np
from PIL import Image

from customvid.metrics.runner import EvalReport

PER_VIDEO_JSON = "per_video.json"
AGGREGATE_JSON = "aggregate.json"
HTML_REPORT = "report.html"
ATTRIBUTE_BARS = (
    "attr_colour",
    "attr_shape",
    "attr_texture",
    "attr_background",
    "motion_acc",
    "identity_match",
)


def _clean(x):
    """JSON-safe: numpy -> python, NaN/inf -> None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _boxes_list(boxes) -> list | None:
    if boxes is None:
        return None
    return [None if not np.isfinite(b).all() else [round(float(v), 3) for v in b] for b in np.asarray(boxes)]


def _detail(report: EvalReport, metric: str, key: str, i: int):
    res = report.results.get(metric)
    if res is None or res.skipped_reason is not None or key not in res.details:
        return None
    return res.details[key][i]


def detected_boxes(report: EvalReport, i: int):
    d = _detail(report, "miou", "detected_boxes", i)
    return d if d is not None else _detail(report, "trajectory_error", "probe_boxes", i)


def target_boxes(report: EvalReport, i: int):
    r = report.records[i]
    if r.target_boxes is not None:
        return r.target_boxes
    return _detail(report, "trajectory_error", "target_boxes", i)


def per_video_json(report: EvalReport, sources: list[str] | None = None) -> list[dict]:
    out = []
    for i, r in enumerate(report.records):
        entry = {
            "id": r.id,
            "video": sources[i] if sources else r.source,
            "prompt": r.prompt,
            "frames": r.num_frames,
            "width": r.width,
            "height": r.height,
            "metrics": {name: res.per_video[i] for name, res in report.results.items()},
        }
        probe = {}
        for name in ATTRIBUTE_BARS:
            read = _detail(report, name, "probe_values", i)
            if read is not None:
                attr = "motion" if name == "motion_acc" else name.removeprefix("attr_")
                probe[attr] = read
        if probe:
            entry["probe"] = probe
        identity = _detail(report, "identity_match", "reference_identity", i)
        if identity is not None:
            entry["reference_identity"] = identity
        det = detected_boxes(report, i)
        if det is not None:
            entry["detected_boxes"] = _boxes_list(det)
        pairs = _detail(report, "dynamic_degree", "pair_scores", i)
        if pairs is not None:
            entry["flow_pair_scores"] = [round(s, 4) for s in pairs]
        out.append(_clean(entry))
    return out


def aggregate_json(report: EvalReport) -> dict:
    metrics = {}
    for m in report.metrics:
        res = report.results[m.name]
        metrics[m.name] = {
            "title": m.title,
            "value": res.aggregate,
            "n": res.n,
            "higher_is_better": m.higher_is_better,
            "skipped_reason": res.skipped_reason,
        }
    return _clean({"n_videos": len(report.records), "settings": report.settings, "metrics": metrics})


def write_report(
    report: EvalReport,
    out_dir,
    sources: list[str] | None = None,
    html_report: bool = True,
    title: str = "customvid evaluation",
) -> dict[str, Path]:
    """Write per_video.json, aggregate.json and (unless html_report=False) report.html into out_dir."""
    from customvid.io import write_json_atomic, write_text_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_video": write_json_atomic(out / PER_VIDEO_JSON, per_video_json(report, sources)),
        "aggregate": write_json_atomic(out / AGGREGATE_JSON, aggregate_json(report)),
    }
    if html_report:
        paths["html"] = write_text_atomic(out / HTML_REPORT, render_html(report, sources, title))
    return paths


# ------------------------------------------------------------------------------------------------------- HTML


def _fmt(v) -> str:
    return "&ndash;" if v is None else f"{v:.4f}"


def _png_data_uri(img: np.ndarray) -> str:
    buf = _io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def contact_sheet_png(frames: np.ndarray, max_width: int = 1100) -> str:
    from customvid.io import contact_sheet

    w = frames.shape[2]
    cols = min(len(frames), 8)
    scale = max(1, min(4, 96 // max(w, 1)))
    sheet = contact_sheet(frames, cols=cols, scale=scale, labels=[str(k) for k in range(len(frames))])
    if sheet.shape[1] > max_width:
        h = round(sheet.shape[0] * max_width / sheet.shape[1])
        sheet = np.asarray(Image.fromarray(sheet).resize((max_width, h), Image.BILINEAR))
    return _png_data_uri(sheet)


def _polylines(centres: np.ndarray, colour: str, width: float) -> str:
    """One SVG polyline per run of finite points (a gap where the box is missing), plus a dot per point."""
    parts, run = [], []
    for c in list(centres) + [None]:
        if c is not None and np.isfinite(c).all():
            run.append(f"{c[0]:.2f},{c[1]:.2f}")
            continue
        if len(run) > 1:
            parts.append(
                f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="{width}"/>'
            )
        run = []
    for c in centres:
        if np.isfinite(c).all():
            parts.append(f'<circle cx="{c[0]:.2f}" cy="{c[1]:.2f}" r="{width * 1.2:.2f}" fill="{colour}"/>')
    return "".join(parts)


def trajectory_svg(frame: np.ndarray, target, detected, display_width: int = 256) -> str:
    """The first frame, target boxes and centres (green) and detected boxes and centres (red), in pixels."""
    from customvid.metrics.boxes import box_centres

    h, w = frame.shape[:2]
    stroke = max(w, h) / 200
    small = np.asarray(Image.fromarray(frame).resize((min(w, 256), max(1, round(h * min(w, 256) / w)))))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{display_width}" '
        f'height="{round(display_width * h / w)}" style="background:#000">',
        f'<image href="{_png_data_uri(small)}" x="0" y="0" width="{w}" height="{h}" opacity="0.45" '
        'preserveAspectRatio="none"/>',
    ]
    for boxes, colour in ((target, "#3ddc84"), (detected, "#ff5252")):
        if boxes is None:
            continue
        boxes = np.asarray(boxes, dtype=np.float64)
        for b in boxes:
            if np.isfinite(b).all():
                parts.append(
                    f'<rect x="{b[0]:.2f}" y="{b[1]:.2f}" '
                    f'width="{b[2] - b[0]:.2f}" height="{b[3] - b[1]:.2f}" '
                    f'fill="none" stroke="{colour}" stroke-opacity="0.35" stroke-width="{stroke / 2:.3f}"/>'
                )
        parts.append(_polylines(box_centres(boxes), colour, stroke))
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(items: list[tuple[str, float]], width: int = 420, bar_height: int = 22) -> str:
    """Horizontal bars for values in [0, 1]."""
    label_w, pad = 170, 4
    h = len(items) * (bar_height + pad) + pad
    span = width - label_w - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
        'font-family="sans-serif" font-size="12">'
    ]
    for k, (label, value) in enumerate(items):
        y = pad + k * (bar_height + pad)
        v = min(max(value, 0.0), 1.0)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">'
            f"{html.escape(label)}</text>"
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{span}" height="{bar_height}" fill="#eee"/>')
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{span * v:.1f}" height="{bar_height}" fill="#4a7bd0"/>'
        )
        parts.append(f'<text x="{label_w + span + 6}" y="{y + bar_height * 0.7:.1f}">{value:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}
td.l,th.l{text-align:left}
.skip{color:#a33}
.video{border-top:1px solid #ccc;padding:12px 0}
.row{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}
.legend span{margin-right:12px;font-size:12px}
code{background:#f4f4f4;padding:1px 3px}
"""


def render_html(
    report: EvalReport, sources: list[str] | None = None, title: str = "customvid evaluation"
) -> str:
    e = html.escape
    computed = [m for m in report.metrics if report.results[m.name].skipped_reason is None]
    out = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
        f"</head><body><h1>{e(title)}</h1>"
    ]
    settings = ", ".join(f"{k}: <code>{e(str(v))}</code>" for k, v in report.settings.items())
    out.append(f"<p>{len(report.records)} videos. {settings}</p>")

    out.append(
        "<h2>Aggregate</h2><table><tr><th class='l'>metric</th><th>value</th><th>n</th>"
        "<th class='l'>better</th><th class='l'>note</th></tr>"
    )
    for m in report.metrics:
        res = report.results[m.name]
        note = f"<span class='skip'>skipped: {e(res.skipped_reason)}</span>" if res.skipped_reason else ""
        out.append(
            f"<tr><td class='l'>{e(m.title)} <code>{e(m.name)}</code></td><td>{_fmt(res.aggregate)}</td>"
            f"<td>{res.n}</td><td class='l'>{'higher' if m.higher_is_better else 'lower'}</td>"
            f"<td class='l'>{note}</td></tr>"
        )
    out.append("</table>")

    titles = {m.name: m.title for m in report.metrics}
    bars = [
        (titles[n], report.results[n].aggregate)
        for n in ATTRIBUTE_BARS
        if n in report.results and report.results[n].aggregate is not None
    ]
    if bars:
        out.append("<h2>World attribute accuracy</h2>" + bars_svg(bars))

    out.append("<h2>Per video</h2><table><tr><th class='l'>#</th><th class='l'>video</th>")
    out.extend(f"<th>{e(m.title)}</th>" for m in computed)
    out.append("</tr>")
    for i, r in enumerate(report.records):
        out.append(f"<tr><td class='l'><a href='#v{i}'>{i}</a></td><td class='l'>{e(r.id)}</td>")
        out.extend(f"<td>{_fmt(report.results[m.name].per_video[i])}</td>" for m in computed)
        out.append("</tr>")
    out.append("</table>")

    for i, r in enumerate(report.records):
        source = sources[i] if sources else r.source
        where = f" <small>({e(source)})</small>" if source and source != r.id else ""
        out.append(
            f"<div class='video' id='v{i}'><h3>{i}. {e(r.id)}{where}</h3><p>prompt: <i>{e(r.prompt)}</i>"
            f" &middot; {r.num_frames} frames, {r.width}x{r.height}</p><div class='row'>"
        )
        out.append(
            f"<img src='{contact_sheet_png(r.frames)}' alt='contact sheet of {e(r.id)}' "
            "style='image-rendering:pixelated;max-width:100%'>"
        )
        target, det = target_boxes(report, i), detected_boxes(report, i)
        if target is not None or det is not None:
            out.append(
                "<div>"
                + trajectory_svg(r.frames[0], target, det)
                + "<div class='legend'><span style='color:#2a9d5c'>&#9632; target boxes / centres</span>"
                "<span style='color:#d33'>&#9632; detected</span></div></div>"
            )
        values = "".join(
            f"<tr><td class='l'>{e(m.title)}</td><td>{_fmt(report.results[m.name].per_video[i])}</td></tr>"
            for m in computed
            if report.results[m.name].per_video[i] is not None
        )
        if values:
            out.append(f"<table>{values}</table>")
        if r.reference_images:
            refs = "".join(
                f"<img src='{_png_data_uri(img)}' "
                "style='max-height:96px;image-rendering:pixelated;margin:2px'>"
                for img in r.reference_images
            )
            out.append(f"<div><div>reference images</div>{refs}</div>")
        out.append("</div></div>")
    out.append("</body></html>")
    return "".join(out)
