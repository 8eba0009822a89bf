"""repro_common.py - what the reproductions in this folder share.

Each repro runs one scenario on a fresh cluster of real processes
(tests/integration/scl.py) and exits 0 when the behaviour is right, 1 while
the defect is there and 2 on a harness error (an exception: the cluster's
logs are printed). `run(main)` does that around `main(cluster)`, which
returns 0 or 1; `sample_job` makes a job of the first sample attempt.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "integration"))
import scl  # noqa: E402


def sample_job(job_id, **kw):
    """The first csm-smb sample attempt as a job with this id (and ttr_ms=...)."""
    return scl.job_from_attempt(scl.load_attempt(scl.attempt_files()[0]), job_id, **kw)


def run(main):
    """Exit with main(cluster) on a fresh cluster, or 2 if it raises."""
    c = scl.Cluster(tempfile.mkdtemp(prefix="scl-repro-"))
    try:
        status = main(c)
    except Exception as e:
        print("harness error: %s" % e)
        print(c.logs())
        status = 2
    finally:
        c.close()
    sys.exit(status)
