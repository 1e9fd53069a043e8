"""Data-annotation task: label the bundle's samples with the labels of ``label_schema.json``.

Where the labels come from, in order:

1. an answers file in ``DECENTRALML_DATA_DIR``: ``labels.json`` (``{"<sample id>": "<label>"}``)
   or ``labels.csv`` (``id,label`` rows) - what the runner uses, since a task it runs has no
   terminal;
2. a prompt per sample when run by hand in a terminal (``python annotate.py``).

Every label is checked against the schema before anything is written. Output, in
``DECENTRALML_OUTPUT_DIR`` (or ``./output`` by hand):

* ``annotations.json``: ``{"schema": <name>, "annotations": {"<sample id>": <label>, ...}}``
  (the shape the creator's majority vote merges);
* ``result.json``: ``{"num_examples": <labelled>, "metrics": {"coverage": <labelled / total>}}``.

The creator edits the hooks (sample loading, how a sample is shown, label validation) between
the markers; a multi-label schema (``"multi_label": true``) takes comma-separated labels.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


# --- hooks: begin ---
def load_samples(task_dir: Path) -> list[dict[str, Any]]:
    """The samples to label: one JSON object per line with at least an ``id``."""
    samples = []
    with open(task_dir / "samples" / "samples.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                samples.append(json.loads(line))
    return samples


def show(sample: dict[str, Any]) -> str:
    """How a sample is presented to a human annotator."""
    return str(sample.get("text", sample))


def check_label(label: Any, schema: dict[str, Any]) -> Any:
    """The label as stored, or ``ValueError`` if the schema does not allow it."""
    allowed = schema["labels"]
    if schema.get("multi_label"):
        values = label if isinstance(label, list) else [v.strip() for v in str(label).split(",")]
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise ValueError(f"{bad or label!r} not in {allowed}")
        return sorted(set(values))
    if label not in allowed:
        raise ValueError(f"{label!r} not in {allowed}")
    return label
# --- hooks: end ---


def read_answers(data_dir: Path | None) -> dict[str, Any] | None:
    """The contributor's labels from ``labels.json`` or ``labels.csv``, if either exists."""
    if data_dir is None:
        return None
    as_json = data_dir / "labels.json"
    if as_json.is_file():
        answers = json.loads(as_json.read_text(encoding="utf-8"))
        if not isinstance(answers, dict):
            raise SystemExit("labels.json must map sample ids to labels")
        return {str(k): v for k, v in answers.items()}
    as_csv = data_dir / "labels.csv"
    if as_csv.is_file():
        with open(as_csv, newline="", encoding="utf-8") as fh:
            return {row["id"]: row["label"] for row in csv.DictReader(fh)}
    return None


def ask(sample: dict[str, Any], schema: dict[str, Any]) -> Any:
    """Prompt until the human gives a valid label (empty input skips the sample)."""
    labels = schema["labels"]
    print(f"\n[{sample['id']}] {show(sample)}")
    while True:
        text = input(f"label ({', '.join(labels)}; enter to skip): ").strip()
        if not text:
            return None
        if text.isdigit() and 1 <= int(text) <= len(labels):
            text = labels[int(text) - 1]
        try:
            return check_label(text, schema)
        except ValueError as exc:
            print(f"  {exc}")


def main() -> int:
    """Label every sample, validate, write annotations.json and result.json."""
    task_dir = Path(os.environ.get("DECENTRALML_TASK_DIR", HERE))
    data = os.environ.get("DECENTRALML_DATA_DIR")
    output_dir = Path(os.environ.get("DECENTRALML_OUTPUT_DIR", HERE / "output"))
    schema = json.loads((task_dir / "label_schema.json").read_text(encoding="utf-8"))
    samples = load_samples(task_dir)
    ids = [str(s["id"]) for s in samples]
    if len(set(ids)) != len(ids):
        raise SystemExit("sample ids are not unique")

    answers = read_answers(Path(data) if data else None)
    if answers is None and not sys.stdin.isatty():
        print("no labels.json or labels.csv in DECENTRALML_DATA_DIR and no terminal to ask on",
              file=sys.stderr)
        return 2
    unknown = sorted(set(answers or {}) - set(ids))
    if unknown:
        print(f"answers for unknown sample ids: {unknown[:10]}", file=sys.stderr)
        return 2

    annotations: dict[str, Any] = {}
    for sample, sample_id in zip(samples, ids, strict=True):
        if answers is None:
            label = ask(sample, schema)
        elif sample_id in answers and answers[sample_id] not in ("", None):
            try:
                label = check_label(answers[sample_id], schema)
            except ValueError as exc:
                print(f"sample {sample_id}: {exc}", file=sys.stderr)
                return 2
        else:
            label = None
        if label is not None:
            annotations[sample_id] = label

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "annotations.json").write_text(
        json.dumps({"schema": schema.get("name", ""), "annotations": annotations}, indent=2),
        encoding="utf-8")
    coverage = len(annotations) / len(samples) if samples else 0.0
    (output_dir / "result.json").write_text(
        json.dumps({"num_examples": len(annotations), "metrics": {"coverage": coverage}}),
        encoding="utf-8")
    print(f"labelled {len(annotations)} of {len(samples)} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
