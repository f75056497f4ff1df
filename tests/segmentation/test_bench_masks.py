"""`bench masks` end to end on two images, from Python and from the CLI."""

import json

from customvid.benchmarks.masks import format_masks_table, run_masks_benchmark
from customvid.cli import main


def test_masks_benchmark_on_two_images():
    result = run_masks_benchmark(n_refs=1, n_train=1, sizes=(32,), subjects=["teal_ring"])
    assert [(r["condition"], r["segmenter"]) for r in result["rows"]] == [
        ("clean", "border"), ("clean", "grabcut"), ("degraded", "border"), ("degraded", "grabcut")]
    assert all(r["images"] == 2 and 0 <= r["min"] <= r["mean"] <= 1 for r in result["rows"])
    assert {i["split"] for i in result["images"]} == {"subjects", "train"}
    table = format_masks_table(result)
    assert table.count("\n") == 5 and "| 32 px | clean | border |" in table


def test_bench_masks_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "masks.json"
    assert main(["bench", "masks", "--refs", "0", "--train", "2", "--sizes", "32", "--conditions", "clean",
                 "--json", str(out)]) == 0
    assert "| 32 px | clean | grabcut |" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [r["segmenter"] for r in rows] == ["border", "grabcut"]


def test_bench_masks_cli_rejects_no_images(capsys):
    assert main(["bench", "masks", "--refs", "0", "--train", "0"]) == 2
    assert "not both 0" in capsys.readouterr().err
