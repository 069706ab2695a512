"""Does a model see time? Test accuracy of bundles on the pairs of classes that differ only in
direction (left/right, up/down, cw/ccw, grow/shrink on the built-in dataset).

For every pair, the *within-pair* accuracy: of the test clips of either class that the model put
in that pair, the fraction it got right. A frame-order-blind model (TSN average) sits near 50 %
there, whatever its overall top-1; a temporal model should be near 100 %.

    python benchmarks/temporal.py RUN/best.vidlab TSN_RUN/best.vidlab --data OUT/split.jsonl
"""

from __future__ import annotations

import argparse
import json

PAIRS = (("move_left", "move_right"), ("move_up", "move_down"), ("rotate_cw", "rotate_ccw"),
         ("grow", "shrink"))


def within_pair_accuracy(labels: list[str], confusion: list[list[int]],
                         pair: tuple[str, str]) -> float | None:
    """Correct / (all predictions inside the pair) over the clips of the pair's two classes."""
    if not set(pair) <= set(labels):
        return None
    a, b = (labels.index(name) for name in pair)
    inside = confusion[a][a] + confusion[a][b] + confusion[b][a] + confusion[b][b]
    return (confusion[a][a] + confusion[b][b]) / inside if inside else None


def main() -> None:
    from vidlab.train import evaluate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--data", required=True, help="manifest with a test split, or a folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for path in args.bundles:
        result = evaluate(path, args.data, split=args.split, views=(3, 1))
        row = {"bundle": path, "top1": result.top1, "num_clips": result.num_clips}
        for pair in PAIRS:
            acc = within_pair_accuracy(result.labels, result.confusion_matrix, pair)
            row["/".join(pair)] = acc
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    keys = ["top1", *("/".join(p) for p in PAIRS)]
    print("bundle".ljust(40), *(k.rjust(22) for k in keys))
    for row in rows:
        cells = ["-" if row[k] is None else f"{row[k]:.1%}" for k in keys]
        print(row["bundle"][-40:].ljust(40), *(c.rjust(22) for c in cells))


if __name__ == "__main__":
    main()
