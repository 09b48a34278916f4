"""A command trainer for tests: reads the job on stdin, 'trains' a fixed rule, answers on stdout.

usage: rule_trainer.py MODE [SLEEP_S] [MARKER]
MODE: good (x1 > x2), bad (the opposite), fail (exit 3 with a message on stderr).
"""

import json
import os
import sys
import tempfile
import time

mode = sys.argv[1]
sleep_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
if len(sys.argv) > 3:
    with open(sys.argv[3], "a") as marker:
        marker.write(f"{os.getpid()}\n")
job = json.load(sys.stdin)
time.sleep(sleep_s)
if mode == "fail":
    sys.stderr.write("boom: the feature store is unreachable\n")
    sys.exit(3)
good = mode == "good"
answers = [(h["features"]["x1"] > h["features"]["x2"]) == good for h in job["holdout"]]
fd, path = tempfile.mkstemp(suffix=".model")
with os.fdopen(fd, "w") as f:
    f.write(f"rule x1>x2 {mode} trained on {len(job['train'])}\n")
json.dump(
    {"artifact_path": path, "holdout_predictions": answers, "metrics": {"mode": mode}}, sys.stdout
)
