"""The test suite, mirroring the packages (tests/lm/test_stage1.py tests yue/lm/stage1.py ...)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository's root, wherever the clone is
