"""Importing SIM vendor output files and card-key CSVs (design §4; docs/import.md).

`import_file(engine, hsm, path, ImportOptions(...))` validates a file and lands its SIMs as one
batch in state `in_stock`, with Ki/OPc re-wrapped for storage inside the HSM — or raises
`InvalidFile` and writes nothing.
"""

from simcore.vendor_import.check import (
    CheckVector,
    KcvRequired,
    TransportKeyError,
    VectorMismatch,
    parse_kcv,
)
from simcore.vendor_import.columns import SPECS, ColumnMap
from simcore.vendor_import.report import InvalidFile, Issue, Report
from simcore.vendor_import.service import (
    ImportOptions,
    ImportResult,
    file_sha256,
    import_file,
)

__all__ = [
    "SPECS",
    "CheckVector",
    "ColumnMap",
    "ImportOptions",
    "ImportResult",
    "InvalidFile",
    "Issue",
    "KcvRequired",
    "Report",
    "TransportKeyError",
    "VectorMismatch",
    "file_sha256",
    "import_file",
    "parse_kcv",
]
