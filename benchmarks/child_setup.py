"""How every child process of the per-step benchmark scripts starts (``bench_first_log.py``,
``bench_relog.py``, ``bench_change.py``): Python source, put in front of each script's own code
and run with ``python -c``. The child gets the home directory as ``sys.argv[1]``."""

#: The embedded default pointed at ``home`` (store, registry and caches under it), and what the
#: package loads lazily imported before any clock starts.
SETUP = """
import functools, json, os, sys, time
home = sys.argv[1]
for k, v in {"STORE": home + "/store", "REGISTRY": "sqlite:///" + home + "/registry.db",
             "CACHE_DIR": home + "/cache", "CONFIG": home + "/none.toml", "PROJECT": "bench"}.items():
    os.environ["ARTIFACT_PLUGINS_" + k] = v
import artifact_plugins as ap
import artifact_plugins.core.api, artifact_plugins.core.run, artifact_plugins.core.transfer
from artifact_plugins.core.client import get_client
spent = {}

active = {}

def timed(owner, name, step):
    \"\"\"Wrap ``owner.name`` so the time spent in it adds up in ``spent[step]`` (calls made inside
    another call timed for the same step are not counted twice).\"\"\"
    real = getattr(owner, name)
    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        if active.get(step):
            return real(*args, **kwargs)
        active[step] = True
        t = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            active[step] = False
            spent[step] = spent.get(step, 0.0) + time.perf_counter() - t
    setattr(owner, name, wrapper)
"""

#: The registry opened (migrated) and the checksum cache connected, untimed.
WARM = """
client = get_client(); client.registry; client.checksum_cache._connect()
"""
