"""`make docs`: the generated parts of README.md and docs/*.md, and the checks on all of them.

    python -m tools.docs            # rewrite every generated region in place
    python -m tools.docs --check    # exit 1 naming each region that differs from what it would write

Modules: markers (the regions), blocks (what each region holds), params_table, api, bench_output
(reading results/bench.txt), slugs and links (GitHub's heading anchors; links that do not resolve).
"""
