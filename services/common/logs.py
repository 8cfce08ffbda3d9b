"""Process logs: one JSON object a line, carrying the trace id of the call being served.

Each line: `time` (UTC, ISO 8601 with milliseconds), `level`, `process`, `logger`, `message`,
`trace_id` (services.common.tracing; empty outside a call) and, for an exception, `exception`
(its traceback). PICTOR_LOG_FORMAT=text gives the plain one-line format instead.
"""

from __future__ import annotations

import json
import logging
import os
import time

from services.common.tracing import current_trace_id


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "process": self.process,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": current_trace_id(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(process: str) -> None:
    """The root logger of a process of the mesh: JSON lines on stderr (PICTOR_LOG_FORMAT=text: plain)."""
    handler = logging.StreamHandler()
    if os.environ.get("PICTOR_LOG_FORMAT", "json") == "text":
        handler.setFormatter(logging.Formatter(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter(process))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
