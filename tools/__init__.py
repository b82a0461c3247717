"""Research and maintenance scripts kept out of the installed package.

`official_harness` times the official PyTorch code (`benchmarks/run.py --official`);
`derive_tables` re-derives the spectral tables shipped in `keras_hsifusion/data/`.
"""
