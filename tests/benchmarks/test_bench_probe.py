"""`bench probe` runs end to end and reports every condition."""

from customvid.benchmarks.probe import format_probe_table, run_probe_benchmark
from customvid.cli import main


def test_probe_benchmark_on_clean_renders_is_perfect():
    result = run_probe_benchmark(n_clips=8, seed=3, conditions=("clean",))
    table = format_probe_table(result)
    row = next(line for line in table.splitlines() if line.startswith("| clean"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:10] == ["100.0"] * 9, row  # presence .. motion


def test_bench_probe_cli_rejects_zero_clips(capsys):
    assert main(["bench", "probe", "--clips", "0"]) == 2
    assert "--clips >= 1" in capsys.readouterr().err
