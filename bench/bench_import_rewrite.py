"""The import's dump rewrite (`carestack_agent.sqldump.rewrite`): MB/s of SQL, with and without the old URL.

Builds a mysqldump-style dump in memory (extended INSERTs of 1000 rows of post-like text; every fifth
row a serialized widget option made by PHP), then rewrites it to the new URL: once where every row
names the old URL (the worst case), once where a tenth of the rows do, once where none does.
Needs php-cli. No lab, no root.

    .venv/bin/python bench/bench_import_rewrite.py [--mb 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import time

from carestack_agent import sqldump
from carestack_agent.serialized import UrlRewrite
from rows import record

OLD, NEW = "http://old.example", "https://www.bakery.example"
WIDGET = 'echo serialize([2 => ["title" => "Shop", "text" => "<a href=\\"http://old.example/x\\">x</a>"]]);'


def build_dump(mb: float, share_with_url: float) -> bytes:
    widget = sqldump.escape(subprocess.run(["php", "-r", WIDGET], capture_output=True, check=True).stdout)
    rows = []
    for i in range(1000):
        url = i % round(1 / share_with_url) == 0 if share_with_url else False
        host = b"old.example" if url else b"elsewhere.example"
        text = b"<p>Lorem ipsum dolor sit amet http://%s/p/%d, consectetur adipiscing elit</p>" % (host, i)
        value = widget if url and i % 5 == 0 else b"plain option value"
        rows.append(b"(%d,'post %d','%s','%s')" % (i, i, text, value))
    statement = b"INSERT INTO `wp_posts` VALUES " + b",".join(rows) + b";\n"
    return b"-- MariaDB dump 10.19\n" + statement * max(1, int(mb * 1e6 / len(statement)))


def rewrite_seconds(dump: bytes) -> float:
    started = time.monotonic()
    sqldump.rewrite(io.BytesIO(dump), io.BytesIO(), UrlRewrite(OLD, NEW), sqldump.RewriteFigures())
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=20.0, help="size of each dump in MB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'rows naming the old URL':<26} {'MB':>6} {'median s':>9} {'MB/s':>7}")
    for share in (1.0, 0.1, 0.0):
        dump = build_dump(args.mb, share)
        seconds = statistics.median(rewrite_seconds(dump) for _ in range(args.runs))
        print(f"{share:<26.0%} {len(dump) / 1e6:>6.1f} {seconds:>9.2f} {len(dump) / 1e6 / seconds:>7.1f}")
        record(f"import: dump URL rewrite, {share:.0%} of rows name the old URL", len(dump) / 1e6 / seconds, "MB/s")


if __name__ == "__main__":
    main()
