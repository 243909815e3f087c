"""`r1repro check` (cli.py): validate a recipe without downloading anything. The checks (inputs.py,
lengths.py) return Finding records, summary.py writes the summary lines, cli.py loads the recipe as the
stage does and renders the report. Kept empty: r1repro/trainers/dynamic_sampling.py and the light
modules import parts of this package without paying for the rest."""
