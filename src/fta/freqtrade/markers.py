"""The markers that start the lines a job container's entry prints for the platform.

Only the entry (`fta.freqtrade.entry`, which keeps its own copies: it runs where no fta package
is installed) starts a line with one of them: a line of the job's own that starts with
`MARKER_START` is forwarded behind `ESCAPED_MARKER`, so the worker never takes it for one.
"""

from __future__ import annotations

# The job's summary, the last stdout line of a successful run (fta.jobs.summary reads it).
RESULT_PREFIX = "FTA-RESULT:"
# The cause of a failed run, the last stderr line.
ERROR_PREFIX = "FTA-ERROR:"
# freqtrade's raw result file, in lines `name:`, `data:` and `end:<size>:<sha256>`.
ARCHIVE_PREFIX = "FTA-ARCHIVE:"
# A running bot's periodic report (fta.bots.snapshots reads it).
STATUS_PREFIX = "FTA-STATUS:"
# What every marker starts with, and what a forwarded line that starts so is put behind.
MARKER_START = "FTA-"
ESCAPED_MARKER = "[job] "
