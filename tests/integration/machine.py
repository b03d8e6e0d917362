"""One "machine" of the bucket herd tests: calls the gated task once on S3 or GCS storage.

Run as ``python machine.py s3|gcs BUCKET ENDPOINT RUNS GATE``; it has its own RESULTKIT_HOME and
gets ``RESULTKIT_ISOLATION_LEVEL=SERIALIZABLE`` from its environment, and no lock manager:
the lock lives in the bucket.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.*

from resultkit.storage import GCSStorage, S3Storage
from tests.integration.runner_workload import gated_task

if __name__ == "__main__":
    kind, bucket, endpoint, runs, gate = sys.argv[1:6]
    storage = (S3Storage(bucket, "herd", endpoint_url=endpoint) if kind == "s3" else
               GCSStorage(bucket, "herd", endpoint_url=endpoint, token="anon", project="test"))
    gated = gated_task(Path(runs), Path(gate), storage=storage)
    with open(os.path.join(runs, "..", f"started-{os.getpid()}"), "w"):
        pass
    state = gated(3, return_state=True)
    print(state.name, state.result())
