"""Where the points of a sweep are computed: in this process, or on a Dask cluster.

Every sweep is a list of independent points (a (depth, width) of a network sweep, a width of a
uv sweep), each computed by one function and, for the network sweeps, cached on its own
(``cache.cached``). ``run_points`` computes such a list:

* nothing configured: in this process, one point after the other, exactly as without this
  module (dask is not even imported);
* a cluster configured: the points not in the results cache are submitted to it, each worker
  computes its point through the same ``cache.cached`` (so it writes the result into the results
  cache, under the key's lock) and sends the Dataset back; a cached point is never submitted.
  A progress bar advances as points complete.

The cluster is ``EARLYTRAIN_SCHEDULER`` or the ``scheduler`` argument of a sweep (which wins):

* unset or empty: in this process;
* ``local:N``: a ``distributed.LocalCluster`` of N worker processes, one thread each, started on
  first use and kept for the life of this process (``worker_env``: the results cache and the JAX
  compilation cache of this process);
* ``tcp://host:port`` (or ``tls://``): the scheduler of a running cluster (``dask scheduler``,
  dask-jobqueue, dask-cuda); ``*.json``: its scheduler file;
* a ``distributed.Client`` (argument only).

Faults. A worker that dies mid-point (kill -9, out of memory) loses the point; the scheduler
gives it to another worker (at most ``distributed.scheduler.allowed-failures`` = 3 times, then
``KilledWorker``), and the cache's lock and atomic writes leave no partial entry. A point that
raises is not retried (the computation is deterministic: it would raise again), except for an
``OSError`` (a shared file system's hiccup), retried ``OS_RETRIES`` times; the sweep then stops
with one error of the same type that names the sweep, the point, the worker and the cause (the
worker's traceback as a note), and the remaining points are cancelled. The points finished so
far are cached, so the next run resumes.

Same numbers. A worker computes a point exactly as this process would, so the results cache holds
one answer per key wherever it was computed (tests/test_cluster.py: bit-identical). This decides
the threads of a LocalCluster's workers: XLA's CPU code splits its work by the number of cores the
process may use, and that changes the last bits: measured on a tiny sweep, a process pinned to 1
of 2 cores (taskset) gives other float32 losses and sharpness than an unpinned one, and XLA's
single-threaded runtime (``--xla_cpu_multi_thread_eigen=false``) other lambda_0. So each worker
keeps XLA's threads as in this process (all the cores it may use: N workers oversubscribe the
cores N-fold while they all compute) and only numpy's BLAS/OpenMP pools get the worker's share
(dask's default of 1 thread when N >= cores).
"""
from __future__ import annotations

import ast
import atexit
import inspect
import logging
import os
import pickle
import re
import sys
import traceback
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from . import cache, jaxcache, work
from .errors import ConfigError

ENV = "EARLYTRAIN_SCHEDULER"
ALLOWED = ("unset or empty (compute in this process), 'local:N' (a LocalCluster of N >= 1 worker "
           "processes), a scheduler address 'tcp://host:port' or 'tls://host:port', or the path of "
           "an existing scheduler file '*.json'")
OS_RETRIES = 2          # an OSError of a point (shared file system) is retried this many times

_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-]*):\d{1,5}")
_CLIENTS: dict[tuple, Any] = {}


class PointError(RuntimeError):
    """A point failed on a worker with an exception that cannot be re-raised as its own type."""


class ClusterWarning(UserWarning):
    """The cluster works, but not as configured (e.g. workers write to another results cache)."""


def parse(spec: Any, param: str = ENV) -> tuple[str, Any] | None:
    """``spec`` -> None (in process), ("local", N), ("address", str), ("file", str) or
    ("client", client); anything else is a ConfigError naming ``param``."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if hasattr(spec, "submit") and hasattr(spec, "scheduler_info"):  # a distributed.Client
        return "client", spec
    if not isinstance(spec, str):
        raise ConfigError(f"{param}: expected {ALLOWED} or a distributed.Client, got {spec!r}")
    s = spec.strip()
    local = re.fullmatch(r"local:(\d+)", s)
    if local and int(local.group(1)) >= 1:
        return "local", int(local.group(1))
    if _ADDRESS.fullmatch(s):
        return "address", s
    if s.endswith(".json") and Path(s).is_file():
        return "file", s
    raise ConfigError(f"{param}: expected {ALLOWED}, got {spec!r}")


def client_for(scheduler: Any = None):
    """The ``distributed.Client`` to use, or None to compute in this process.

    ``scheduler`` (a spec or a Client) wins over ``EARLYTRAIN_SCHEDULER``. The spec is checked
    before anything is imported or started."""
    parsed = parse(scheduler, "scheduler") if scheduler is not None else parse(os.environ.get(ENV), ENV)
    if parsed is None:
        return None
    kind, arg = parsed
    if kind == "client":
        return arg
    if kind == "local":
        return _local_client(arg)
    key = (kind, arg)
    if key not in _CLIENTS or _CLIENTS[key].status != "running":
        from distributed import Client
        try:
            _CLIENTS[key] = (Client(arg, set_as_default=False, timeout="30s") if kind == "address" else
                             Client(scheduler_file=arg, set_as_default=False, timeout="30s"))
        except OSError as err:
            raise ConnectionError(f"{ENV}={arg}: no Dask scheduler answered ({err}); start one "
                                  "(`dask scheduler`, dask-jobqueue) or unset it") from None
    return _CLIENTS[key]


def worker_env(n_workers: int) -> dict[str, str]:
    """Environment of the workers of a LocalCluster of ``n_workers``: this process's results cache
    (resolved, so a relative EARLYTRAIN_RESULTS means the same directory) and refresh flag, the
    JAX compilation cache (``jaxcache``: this process's setting, else the project's directory)
    and numpy's BLAS/OpenMP threads, this process's cores / n_workers. XLA's threads
    are left as in this process (the module docstring says why: they decide the last bits)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    threads = str(max(1, len(cpus) // n_workers))
    env = {"EARLYTRAIN_RESULTS": str(cache.results_root().resolve()),
           "EARLYTRAIN_REFRESH": os.environ.get("EARLYTRAIN_REFRESH", "0"),
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    for k in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        if k in os.environ:
            env[k] = os.environ[k]
    jaxcache.enable(env)
    return env


GUARD_HELP = ("EARLYTRAIN_SCHEDULER=local:N starts worker processes that import the script that "
              "started them again ({script}); its line {line} starts a cluster when imported, so every "
              "worker would start one too and the cluster never comes up (\"Nanny failed to start\"). "
              "Put the script's work under the guard:\n\n    if __name__ == \"__main__\":\n"
              "        main()\n\nor compute in this process (unset EARLYTRAIN_SCHEDULER)")


def _module_level_call(main) -> int | None:
    """The line of the script ``main`` (sys.modules["__main__"]) whose top-level statement is now
    running, if this call comes from the script's module-level code; None otherwise."""
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is vars(main):
            return frame.f_lineno
        frame = frame.f_back
    return None


def check_main_guard() -> None:
    """ConfigError (with what to do) when a LocalCluster would be started from the top level of a
    script that is not under ``if __name__ == "__main__":``.

    Dask starts a LocalCluster's workers with multiprocessing's "spawn", which runs the parent's
    main script again in each new process (as ``__mp_main__``). Unguarded, the script reaches its
    sweep again in every worker, which tries to start its own cluster, and the parent fails after
    a 40-line traceback ending in "Nanny failed to start". Detected before anything starts: in
    the parent, the line of the script now running is read from the call stack and looked up in
    the script's syntax tree; in a spawned child, by the name ``__mp_main__`` itself. Notebooks
    and interactive sessions have no script file and are never affected."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return
    if main.__name__ == "__mp_main__":
        raise ConfigError(GUARD_HELP.format(script=path, line="(being imported by a worker)"))
    line = _module_level_call(main)
    if line is None or not os.path.isfile(path):
        return
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return

    def is_guard(node) -> bool:
        t = node.test if isinstance(node, ast.If) else None
        return (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__"
                and len(t.comparators) == 1 and isinstance(t.comparators[0], ast.Constant)
                and t.comparators[0].value == "__main__")
    if not any(is_guard(n) and n.lineno <= line <= n.end_lineno for n in tree.body):
        raise ConfigError(GUARD_HELP.format(script=path, line=line))


def _local_client(n: int):
    check_main_guard()  # before anything starts
    env = worker_env(n)
    key = ("local", n, tuple(sorted(env.items())))
    if key in _CLIENTS and _CLIENTS[key].status == "running":
        return _CLIENTS[key]
    for k in [k for k in _CLIENTS if k[0] == "local"]:  # another results dir, say: not reused
        _close(_CLIENTS.pop(k))
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, env=env, preload=[__name__],
                           silence_logs=logging.ERROR)
    _CLIENTS[key] = Client(cluster, set_as_default=False)
    return _CLIENTS[key]


def _close(client) -> None:
    cluster = getattr(client, "cluster", None)
    try:
        client.close()
        if cluster is not None:
            cluster.close()
    except Exception:  # noqa: BLE001  (at exit the event loop may already be gone)
        pass


@atexit.register
def close_all() -> None:
    """Close every client (and the local cluster it started) that ``client_for`` holds; also run
    at exit. The next ``client_for`` starts afresh."""
    while _CLIENTS:
        _close(_CLIENTS.popitem()[1])


def dask_setup(worker=None) -> None:
    """Worker preload (LocalCluster sets it; ``dask worker ... --preload earlytrain.cluster``
    elsewhere): before the first task imports JAX, default the JAX compilation cache to the
    project's (``jaxcache``) unless the worker's environment sets one."""
    jaxcache.enable()


def _compute(fn: Callable, name: str | None, code: str | None, args: tuple):
    """On a worker: ``fn(*args)``, through the results cache under ``name`` if given.

    Returns ("ok", result, worker) or ("error", exception or None, "Type: message", traceback,
    worker): the exception travels back as data, so it is reported once, by the client, and not
    retried. An OSError is raised instead, so the scheduler retries it."""
    from distributed import get_worker
    try:
        where = get_worker().address
    except ValueError:  # not on a worker (called directly)
        where = "this process"
    try:
        if name is not None:
            mine = cache.code_hash_for(fn)
            if code != mine:
                raise PointError(f"the worker's earlytrain source differs from the client's (code hash "
                                 f"{mine[:12]}... vs {code[:12]}...): install the same commit on every worker")
            return "ok", cache.cached(fn, name=name)(*args), where
        return "ok", fn(*args), where
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001  (reported by the client, with the point)
        text, tb = f"{type(err).__name__}: {err}", traceback.format_exc()
        try:
            pickle.loads(pickle.dumps(err))
        except Exception:  # noqa: BLE001  (an exception that does not travel: its text does)
            err = None
        return "error", err, text, tb, where


def _failure(desc: str, label: str, where: str, err: BaseException | None, text: str, tb: str) -> BaseException:
    """One exception for a failed point: the original's type when it takes a message."""
    msg = f"{desc}: point {label} failed on worker {where}: "
    new = None
    if err is not None:
        try:
            new = type(err)(msg + str(err))
        except Exception:  # noqa: BLE001  (a constructor that wants other arguments)
            new = None
    new = new or PointError(msg + (text or f"{type(err).__name__}: {err}"))
    if tb:
        new.add_note("worker traceback:\n" + tb.rstrip())
    return new


def run_points(fn: Callable, points: Sequence[tuple], labels: Sequence[str], desc: str,
               progress: bool | None = True, scheduler: Any = None) -> list:
    """``[fn(*p) for p in points]``, in this process or on the configured cluster.

    Args:
      fn: a module-level function of a point, or its ``cache.cached`` wrapper (then a cached
        point is never submitted, and the workers write into the results cache).
      points: the arguments of each point; labels: what to call each point in messages.
      desc: the progress bar's title (and the sweep named by errors).
      progress: show a bar; None: only on a cluster.
      scheduler: None (``EARLYTRAIN_SCHEDULER``), a spec or a ``distributed.Client``.
    """
    client = client_for(scheduler)
    if client is None:
        return _in_process(fn, list(points), desc, progress)
    return _dispatch(client, fn, list(points), list(labels), desc, progress is not False)


def _in_process(fn, points, desc, progress) -> list:
    """``[fn(*p) for p in points]`` in this process. A ``cache.cached`` fn's cached points are
    read first, so the bar starts at them and says how many; tqdm's rate and ETA count the points
    computed now, and the postfix gives an ETA weighted by each point's size (``work.Eta``:
    a width-2048 point is not a width-256 one)."""
    known = [fn.lookup(*p) if getattr(fn, "cache_name", None) else None for p in points]
    n_cached = sum(r is not None for r in known)
    eta = work.Eta([p[0] if len(p) == 1 else None for p in points], [r is None for r in known]) if progress else None
    bar = tqdm(total=len(points), initial=n_cached, desc=desc, disable=not progress)
    postfix = lambda: ", ".join(s for s in (f"{n_cached} cached" if n_cached else "", eta and eta.text()) if s)  # noqa: E731
    bar.set_postfix_str(postfix(), refresh=False)
    out = []
    try:
        for i, (p, r) in enumerate(zip(points, known)):
            if r is None:
                r = fn(*p)
                if eta:
                    eta.finished(i)
                    bar.set_postfix_str(postfix(), refresh=False)
                bar.update()
            out.append(r)
    finally:
        bar.close()
    return out


def _dispatch(client, fn, points, labels, desc, progress) -> list:
    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    name = getattr(fn, "cache_name", None)
    raw = fn.__wrapped__ if name else fn
    code = cache.code_hash_for(raw) if name else None
    results = [fn.lookup(*p) if name else None for p in points]
    todo = [i for i, r in enumerate(results) if r is None]
    tag = uuid.uuid4().hex[:8]
    task = lambda i: (f"{name}-{fn.cache_path(*points[i]).stem}-{tag}" if name
                      else f"{raw.__module__}.{raw.__qualname__}-{i}-{tag}")
    futures = {client.submit(_compute, raw, name, code, points[i], key=task(i), pure=False,
                             retries=OS_RETRIES): i for i in todo}
    bar = tqdm(total=len(points), initial=len(points) - len(todo), desc=desc, disable=not progress)
    bar.set_postfix_str(f"{len(points) - len(todo)} cached, {len(todo)} on {client.scheduler.address}")
    warned = False
    try:
        for fut in as_completed(futures, loop=client.loop):
            i = futures[fut]
            try:
                status, *rest = fut.result()
            except KilledWorker as err:
                raise PointError(f"{desc}: point {labels[i]}: {err.allowed_failures + 1} workers died while "
                                 "computing it (killed, e.g. out of memory); the points finished so far "
                                 "are cached") from None
            except Exception as err:  # noqa: BLE001  (an OSError after its retries)
                raise _failure(desc, labels[i], "?", err, "", "") from None
            if status == "error":
                raise _failure(desc, labels[i], rest[3], *rest[:3])
            out, where = rest
            if name and not warned and (os.path.realpath(out.attrs.get("cache_path", ""))
                                        != os.path.realpath(fn.cache_path(*points[i]))):
                warnings.warn(f"{desc}: worker {where} wrote {out.attrs.get('cache_path')}, but this process "
                              f"reads {fn.cache_path(*points[i])}: the results are used, but a later run here "
                              "recomputes them; give every worker and this process the same EARLYTRAIN_RESULTS "
                              "(a shared directory)", ClusterWarning, stacklevel=3)
                warned = True
            results[i] = out
            bar.update()
    finally:
        bar.close()
        client.cancel([f for f in futures if not f.done()])
    return results
