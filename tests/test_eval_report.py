"""Markdown table and pass@k PNG over several checkpoints."""

from r1repro.evaluation.report import markdown_table, plot_pass_at_k

EVALS = {
    "base": {"reasoning": {"accuracy_greedy": 0.1, "pass@1": 0.05, "pass@4": 0.2, "pass@2": 0.1, "cons@4": 0.0,
                           "mean_length": 57.25, "n": 100},
             "general": {"accuracy_greedy": 0.9, "pass@1": 0.8, "n": 20}},
    "r1zero": {"reasoning": {"accuracy_greedy": 0.5, "pass@1": 0.45, "pass@2": 0.6, "pass@4": 0.7, "cons@4": 0.5,
                             "mean_length": 40.0,
                             "language_consistency": None, "n": 100}},
}


def test_markdown_table_rows_and_column_order():
    lines = markdown_table(EVALS).splitlines()
    assert lines[0] == ("| task | checkpoint | accuracy_greedy | pass@1 | pass@2 | pass@4 | cons@4 | mean_length "
                        "| language_consistency | n |")
    assert lines[2] == "| reasoning | base | 0.100 | 0.050 | 0.100 | 0.200 | 0.000 | 57.2 | – | 100 |"
    assert lines[3].startswith("| reasoning | r1zero | 0.500 | 0.450 |")
    assert lines[4].startswith("| general | base | 0.900 | 0.800 | – |")  # forgetting row; r1zero has no general eval
    assert len(lines) == 5


def test_plot_pass_at_k_writes_a_png(tmp_path):
    path = tmp_path / "plots" / "pass_at_k.png"
    plot_pass_at_k(EVALS, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["pass_at_k.png"]  # no temp file left behind


def test_plot_pass_at_k_shades_the_bands(tmp_path):
    bands = {"base": {"reasoning": {"pass@1": [0.0, 0.1], "pass@2": [0.05, 0.2], "pass@4": [0.1, 0.35]}}}
    plain, shaded = tmp_path / "plain.png", tmp_path / "shaded.png"
    plot_pass_at_k(EVALS, str(plain))
    plot_pass_at_k(EVALS, str(shaded), bands)
    assert shaded.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shaded.read_bytes() != plain.read_bytes()
    plot_pass_at_k(EVALS, str(tmp_path / "other.png"), {"nobody": {"reasoning": {"pass@1": [0, 1]}}})
    assert (tmp_path / "other.png").read_bytes() == plain.read_bytes()  # bands of no plotted curve: nothing drawn
