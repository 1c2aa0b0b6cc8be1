"""Parser of ``runway init``: a pipeline from your own CSV data."""

from __future__ import annotations

from typing import Any

from pipeline_components.cli.commands.scaffold import cmd_init
from pipeline_components.cli.parsers.command import add_command

HELP = "a new pipeline from your own CSV: spans, configuration, schema, expectation suite, serving contract"
DESCRIPTION = """\
Make a pipeline from your own tabular data, ready to run: no file to write by hand.

It reads your CSV file (or a folder of span folders), decides what each column is, and writes:
  <data dir>/NAME/span-<N>/data.csv       the spans, with a _manifest.json each (rows, rows dropped)
  configs/NAME.yaml                        a complete configuration, a comment on every choice
  configs/schemas/NAME/schema.pbtxt        the TFDV schema, inferred from the spans
  configs/expectations/NAME.json           a draft Great Expectations suite
and the serving contract inside the configuration (each input with its dtype, from the schema).
Then it prints the command to run. Review the three files before you commit them.

Columns: text is categorical (vocabulary + embedding); integers with at most 12 values are
categorical codes; other numbers are numeric (z-scores). Left out, with the reason in the
configuration: the span column, --exclude columns, a column with one value, text that names rows
(an identifier), a column missing in more than 5 % of rows. Rows missing a kept value are dropped
(counted in each span's manifest).

The label: two values make a binary label, a few (up to 50) a multiclass one. Text values such as
yes/no or class names are kept as they are (label.values: name, with label.classes in index order;
served answers name the classes); integers 0/1 (or 0..K-1) are class indices. The positive class of
a binary label is yes/true/1/positive when there is one, else the rarer value, else --positive.

Spans: --span-column splits one CSV file by that column's integer values (a year, a month such as
201403, a batch number); --spans-from-folders reads DIR/<folder with a number>/*.csv, the number being
the span; with neither, the whole file is span 1. The model trains on every span there is
(data.window_spans), and the first `runway run NAME --history` takes them all in, oldest first.

Examples:
  runway init taxi_tips --csv trips.csv --label tipped --span-column year
  runway init churn --spans-from-folders exports/ --label churned --exclude customer_id
  runway init iris --csv iris.csv --label species"""


def add_parsers(sub: Any) -> None:
    """Register ``init`` on the ``runway`` subparsers."""
    init = add_command(sub, "init", help=HELP, description=DESCRIPTION, func=cmd_init)
    init.add_argument("name", help="the new pipeline's name: lower-case letters, digits, '_' (e.g. taxi_tips)")
    source = init.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", metavar="FILE", help="your data: one CSV file with a header line")
    source.add_argument(
        "--spans-from-folders", metavar="DIR", help="your data: DIR/<span folder>/*.csv, one folder per span"
    )
    init.add_argument("--label", required=True, metavar="COLUMN", help="the column to predict")
    init.add_argument(
        "--span-column", metavar="COLUMN", help="with --csv: the column whose integer values number the spans"
    )
    init.add_argument(
        "--exclude", action="append", metavar="COLUMN", help="a column to leave out, e.g. an id (repeatable)"
    )
    init.add_argument("--positive", metavar="VALUE", help="a binary label's positive class (default: see above)")
    init.add_argument("--force", action="store_true", help="write over an existing pipeline of that name")
