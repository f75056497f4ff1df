"""`customvid evaluate`: score generated videos listed in a manifest; write JSON and an HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from customvid.errors import CustomvidError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score generated videos (CLIP/DINO metrics, box metrics, world probe scores) and write a report",
        description=(
            "Score the videos of a JSONL manifest (one object per line: video, prompt, optional "
            "reference_images, target_boxes, subject). Writes per_video.json, aggregate.json and a "
            "self-contained report.html. CLIP and DINO metrics need local checkpoint folders "
            "(--clip / --dino); without them they are skipped with a message."
        ),
    )
    p.add_argument("--manifest", type=Path, help="JSONL manifest; paths in it are relative to it")
    p.add_argument("--out", type=Path, help="report folder (created; required unless --list-metrics)")
    p.add_argument(
        "--clip", type=Path, default=None, help="local transformers CLIPModel folder (e.g. ViT-B/32)"
    )
    p.add_argument(
        "--dino", type=Path, default=None, help="local DINO ViT / DINOv2 folder (e.g. dino-vits16)"
    )
    p.add_argument(
        "--detector",
        default="probe",
        help="box detector for mIoU/CD: 'probe' (the world probe, default), 'none', or module.path:Name",
    )
    p.add_argument(
        "--metrics", default=None, help="comma-separated metric names (default: all); see --list-metrics"
    )
    p.add_argument("--list-metrics", action="store_true", help="print the metric names and exit")
    p.add_argument("--batch-size", type=int, default=32, help="images per backbone call (default 32)")
    p.add_argument("--device", default="cpu", help="torch device for the backbones (default cpu)")
    p.add_argument("--no-html", action="store_true", help="write only the JSON files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from customvid.metrics import all_metrics, evaluate_records, load_manifest, write_report
    from customvid.metrics.runner import select_metrics

    if args.list_metrics:
        for m in all_metrics():
            print(f"{m.name:22s} {m.title}  (needs: {', '.join(m.requires) or 'nothing'})")
        return 0
    if args.manifest is None or args.out is None:
        raise CustomvidError("evaluate needs --manifest FILE and --out DIR")
    if args.batch_size < 1:
        raise CustomvidError("--batch-size must be >= 1")
    names = [n.strip() for n in args.metrics.split(",") if n.strip()] if args.metrics else None
    metrics = select_metrics(names)
    progress = not args.quiet
    records = load_manifest(args.manifest, progress=progress)
    detector = None if args.detector == "none" else args.detector
    report = evaluate_records(
        records,
        metrics,
        clip=args.clip,
        dino=args.dino,
        detector=detector,
        batch_size=args.batch_size,
        device=args.device,
        progress=progress,
    )
    paths = write_report(report, args.out, html_report=not args.no_html)
    for name, reason in report.skipped().items():
        print(f"customvid evaluate: skipped {name}: {reason}", file=sys.stderr)
    width = max(len(m.name) for m in report.metrics)
    for m in report.metrics:
        res = report.results[m.name]
        value = (
            "skipped" if res.skipped_reason else ("n/a" if res.aggregate is None else f"{res.aggregate:.4f}")
        )
        print(f"{m.name:{width}s}  {value}" + ("" if res.skipped_reason else f"  (n={res.n})"))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
