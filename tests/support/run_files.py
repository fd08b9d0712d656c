"""Reading what a training run writes into its folder, for the tests that check it."""

import csv
import json
import os


def log_rows(folder):
    """The rows of ``folder/log.csv`` as dicts of strings (one per completed epoch)."""
    with open(os.path.join(folder, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def read_json(folder, name):
    """``folder/name`` parsed as JSON (``config.json``, ``state.json``, ``eval.json``)."""
    with open(os.path.join(folder, name)) as f:
        return json.load(f)
