"""`python -m yue`: the commands (main), their flags (parser, no heavy imports), the progress line (progress) and the
checks of files and flags before any model loads (inputs). A thin layer over `yue.pipeline`."""
