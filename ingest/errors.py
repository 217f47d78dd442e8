"""The one exception every ingest stage raises for a file it cannot turn into a document.

    from ingest.errors import IngestError
    try: parse_document(path)
    except IngestError as e: print(e)  # "政策.pdf: not a valid PDF (EOF marker not found)"
"""
from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """A file could not be ingested; `str()` is one line naming the file and the reason.

    Only the file name goes into the message (it is what an operator recognises in a batch
    report); the full path stays available as `.path`.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"
