"""The test suite, mirroring the packages (tests/lm/test_stage1.py tests yue/lm/stage1.py ...)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository's root, wherever the clone is
# A library's warning on a console: Python's "...Warning: ", a C++ logger's "W1204 ..." line, or a "WARNING" record
WARNING_LINE = re.compile(r"\w*Warning: |^W\d{4} |\bWARNING\b")
