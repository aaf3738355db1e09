"""numpy's and scipy's BLAS on one thread in the studio's process.

The studio's matrices are small (mel filter banks, cepstra, embeddings): one BLAS call is
done before a second thread would help, and OpenBLAS's idle threads then spin on the cores
the models need. Measured on 2 cores, a profile made in-process (four LibriSpeech readers,
two runs each, alternating): 10.0 s mean with OpenBLAS's two threads, 9.0 s with one; the
matching search alone used 2.45 CPU-s in 1.44 s with two, 1.33 CPU-s in 1.18 s with one.
``OPENBLAS_NUM_THREADS``, when set, is kept.
"""

from __future__ import annotations

import os

DEFAULT = 1


def limit_blas_threads() -> int:
    """Limit every BLAS library numpy and scipy load to :data:`DEFAULT` threads (or
    ``OPENBLAS_NUM_THREADS``), now and for those loaded later; returns the limit."""
    limit = int(os.environ.get("OPENBLAS_NUM_THREADS") or DEFAULT)
    os.environ["OPENBLAS_NUM_THREADS"] = str(limit)  # a BLAS loaded later reads it
    import numpy  # noqa: F401  (its OpenBLAS)
    import scipy.linalg  # noqa: F401  (scipy's own)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=limit, user_api="blas")
    return limit
