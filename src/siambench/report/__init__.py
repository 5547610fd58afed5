"""Result records, and the tables and plots built from them."""

from .records import RecordKey, find_record, load_records, record_path, write_record
from .tables import FORMATS, notes, to_csv, to_latex, to_markdown

__all__ = ["FORMATS", "RecordKey", "find_record", "load_records", "notes", "record_path", "to_csv", "to_latex",
           "to_markdown", "write_record"]
