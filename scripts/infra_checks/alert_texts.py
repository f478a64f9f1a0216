"""Check `alert texts`: every text a log alert in INFRA/azure/*.bicep searches for is one the
app's source still writes.

A log alert matches the app's wording (`message contains "..."` in its KQL query); reworded in
src/, the alert would never fire again, and nothing else would notice.
Called by runner.py (the `alert texts` line; the source is always this repository's src/, also
for the self-test's copies) and self_test.py; unit-tested in tests/test_alert_texts.py.
KQL string operators: https://learn.microsoft.com/kusto/query/datatypes-string-operators
"""

import re
from pathlib import Path

from .common import CheckFailed, sorted_glob

ALERT_TEXT = re.compile(r'message (?:contains|has|startswith|endswith) "([^"]+)"')


def alert_texts(infra):
    """(bicep file, text) for every text a log alert query of INFRA/azure/*.bicep looks for."""
    found = []
    for bicep in sorted_glob(Path(infra) / "azure", "*.bicep"):
        with open(bicep) as f:
            found += [(str(bicep), text) for text in ALERT_TEXT.findall(f.read())]
    return found


def source_texts(src):
    """The text of every SRC/**/*.rs file."""
    texts = []
    for path in sorted(Path(src).glob("**/*.rs")):
        with open(path, encoding="utf-8") as f:
            texts.append(f.read())
    return texts


def check_alert_texts(infra, src):
    """infra: holds azure/*.bicep; src: the app's Rust source. Returns the summary; raises
    CheckFailed."""
    code = source_texts(src)
    texts = alert_texts(infra)
    problems = ["%s: an alert searches the logs for %r, which nothing in %s writes" % (bicep, text, src)
                for bicep, text in texts if not any(text in c for c in code)]
    summary = "alert texts: %d alert text(s)" % len(texts)
    if problems:
        raise CheckFailed(summary, "\n".join(problems))
    return "%s, each written by %s/" % (summary, src)
