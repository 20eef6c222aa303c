"""Reading finished runs: `compare` (side by side with paired tests), the HTML samples viewer, plots."""
