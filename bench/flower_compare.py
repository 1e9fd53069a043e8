"""The demo's federated job in Flower and in decentralml, in one run, alternating.

Same job on both sides: digits, the demo's CNN from seed 0, 3 IID shards (``partition_iid``
seed 0), R=4 rounds of 2 local epochs, batch 32, Adam 1e-3 reset each round, contributor seed 0,
FedAvg weighted by examples, accuracy of the global model after each round on the demo's 225
evaluation images. Before a number is reported both sides are checked to start from the same
data and initial weights by SHA-256: the Flower clients refuse to train on a shard or a round-1
model whose hash differs from the one computed here, and the decentralml demo's shard files and
round-1 ``model.keras`` are hashed after its run.

* **decentralml**: ``examples/federated_mnist/demo.py`` (devnode, local store, 3 contributor
  processes through the CLI, on-chain tasks, validation, escrow), its per-round report.
* **Flower**: the Message-API ``FedAvg`` strategy of ``flwr`` (a bench-only dependency: ``pip
  install "flwr[simulation]"``) on the simulation engine with 3 virtual supernodes, up to 3
  client actors in parallel (the demo also runs its 3 contributors in parallel).

Reported per system: per-round wall time, training time (the slowest contributor's ``fit``, since
they run in parallel), overhead (wall minus training), accuracy per round, and the ratios.

Run: ``.venv/bin/python bench/flower_compare.py [--repeats 2] [--rounds 4]``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

CLIENTS = 3
EPOCHS, BATCH, LR, SEED = 2, 32, 1e-3, 0


def sha(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def job_data() -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """The demo's shards and evaluation half, computed the way the demo does."""
    from decentralml.fl import load_mnist, partition_iid

    (x, y), (x_test, y_test), _source = load_mnist(None)
    shards = partition_iid(x, y, CLIENTS, seed=0)
    half = len(y_test) // 2
    return shards, (x_test[half:], y_test[half:])


# --- Flower ---------------------------------------------------------------------------------


def run_flower(workdir: Path, rounds: int, shard_files: list[Path], shard_sha: list[str],
               init_sha: str) -> dict[str, Any]:
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    from decentralml.fl import evaluate, get_weights, make_digits_cnn, set_weights

    _shards, (x_eval, y_eval) = job_data()
    x_shape = tuple(int(d) for d in x_eval.shape[1:])
    client_app = ClientApp()
    warm: dict[str, Any] = {}  # per client actor: one compiled model, as Flower users write it

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        from decentralml.fl import train_local

        pid = int(context.node_config["partition-id"])
        with np.load(shard_files[pid], allow_pickle=False) as f:
            xs, ys = f["x"].astype("float32"), f["y"].astype("int64")
        if sha([xs, ys]) != shard_sha[pid]:
            raise RuntimeError(f"client {pid}: shard differs from decentralml's")
        received = msg.content["arrays"].to_numpy_ndarrays()
        config = msg.content["config"]
        if int(config["server-round"]) == 1 and sha(received) != init_sha:
            raise RuntimeError(f"client {pid}: initial weights differ from decentralml's")
        model = warm.get("model")
        if model is None:
            model = warm["model"] = make_digits_cnn(x_shape, 10, seed=0)
        set_weights(model, received)
        started = time.perf_counter()
        train_local(model, xs, ys, epochs=EPOCHS, batch_size=BATCH, seed=SEED, learning_rate=LR)
        seconds = time.perf_counter() - started
        content = RecordDict({"arrays": ArrayRecord(get_weights(model)),
                              "metrics": MetricRecord({"num-examples": len(ys),
                                                       "train_seconds": seconds})})
        return Message(content=content, reply_to=msg)

    marks: list[float] = []
    accuracy: list[float] = []
    train_seconds: list[float] = []
    scorer = make_digits_cnn(x_shape, 10, seed=0)

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        marks.append(time.perf_counter())
        if server_round > 0:
            set_weights(scorer, arrays.to_numpy_ndarrays())
            accuracy.append(float(evaluate(scorer, x_eval, y_eval)["accuracy"]))
        return MetricRecord({})

    def slowest(contents: list[RecordDict], key: str) -> MetricRecord:
        worst = max(float(c["metrics"]["train_seconds"]) for c in contents)
        train_seconds.append(worst)
        return MetricRecord({"train_seconds": worst})

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=CLIENTS,
                          min_available_nodes=CLIENTS, train_metrics_aggr_fn=slowest)
        initial = get_weights(make_digits_cnn(x_shape, 10, seed=0))
        assert sha(initial) == init_sha
        strategy.start(grid=grid, initial_arrays=ArrayRecord(initial), num_rounds=rounds,
                       train_config=ConfigRecord({}), evaluate_fn=evaluate_fn)

    started = time.perf_counter()
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=CLIENTS,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": CLIENTS,
                                                 "include_dashboard": False}})
    wall = time.perf_counter() - started
    if len(accuracy) != rounds:
        raise RuntimeError(f"Flower ran {len(accuracy)} of {rounds} rounds")
    # round r's wall: from the previous evaluation's end to this one's start (the evaluation
    # itself is counted too, as the demo's federate phase includes its evaluation)
    per_round = [b - a for a, b in itertools.pairwise(marks)]
    return {"wall": wall, "rounds": per_round, "train": train_seconds, "accuracy": accuracy}


def _flower_with_retries(work: Path, rounds: int, files: list[Path], shard_sha: list[str],
                         init_sha: str, attempts: int = 3) -> dict[str, Any] | None:
    """Ray gives its raylet a fixed 30 s to start, which an overloaded machine can miss."""
    for attempt in range(1, attempts + 1):
        try:
            return run_flower(work, rounds, files, shard_sha, init_sha)
        except Exception as exc:  # Flower wraps everything in RuntimeError
            print(f"  flower attempt {attempt} failed: {exc}", flush=True)
            import ray

            ray.shutdown()
            time.sleep(10)
    return None


# --- decentralml -----------------------------------------------------------------------------


def run_decentralml(workdir: Path, rounds: int, shard_sha: list[str],
                    init_sha: str) -> dict[str, Any]:
    from decentralml.cli.demo import load_demo
    from decentralml.fl import get_weights, load_model

    demo = load_demo()
    if demo is None:
        raise RuntimeError("examples/federated_mnist/demo.py not found")
    started = time.perf_counter()
    report = demo.run_demo(workdir, rounds=rounds, log=lambda *_: None)
    wall = time.perf_counter() - started
    files = sorted((workdir / "data").glob("*/data.npz"))
    got = []
    for f in files:
        with np.load(f, allow_pickle=False) as d:
            got.append(sha([d["x"].astype("float32"), d["y"].astype("int64")]))
    if sorted(got) != sorted(shard_sha):
        raise RuntimeError("decentralml's shards differ from Flower's")
    first = load_model(workdir / "creator" / "rounds" / "round-1" / "model.keras")
    if sha(get_weights(first)) != init_sha:
        raise RuntimeError("decentralml's initial weights differ from Flower's")
    per_round = [float(r["seconds"]) for r in report.rounds]
    train = [max(c.train_seconds for c in report.contributors if c.round == r["round"])
             for r in report.rounds]
    return {"wall": report.steps["federated job"], "whole_demo": wall, "rounds": per_round,
            "train": train, "accuracy": [float(r["accuracy"]) for r in report.rounds],
            "central": report.central_accuracy}


# --- report ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    try:
        import flwr
    except ImportError:
        sys.exit("flwr is a bench-only dependency: `make bench-env` installs it from uv.lock")

    from decentralml.fl import get_weights, make_digits_cnn

    shards, (x_eval, _y) = job_data()
    init_sha = sha(get_weights(make_digits_cnn(x_eval.shape[1:], 10, seed=0)))
    shard_sha = [sha([xs.astype("float32"), ys.astype("int64")]) for xs, ys in shards]
    runs: dict[str, list[dict[str, Any]]] = {"flower": [], "decentralml": []}
    with tempfile.TemporaryDirectory(prefix="dml-flower-") as tmp:
        root = Path(tmp)
        files = []
        for k, (xs, ys) in enumerate(shards):
            f = root / f"shard-{k}.npz"
            np.savez(f, x=xs, y=ys)
            files.append(f)
        for rep in range(args.repeats):
            for system in ("flower", "decentralml"):  # alternating, Flower first
                work = root / f"{system}-{rep}"
                work.mkdir()
                if system == "flower":
                    out = _flower_with_retries(work, args.rounds, files, shard_sha, init_sha)
                    if out is None:
                        continue
                else:
                    out = run_decentralml(work, args.rounds, shard_sha, init_sha)
                runs[system].append(out)
                print(f"  {system} run {rep + 1}: job {out['wall']:.1f} s, accuracy "
                      + " ".join(f"{a:.3f}" for a in out["accuracy"]) + "; per round wall "
                      + " ".join(f"{w:.1f}" for w in out["rounds"]) + " s, train "
                      + " ".join(f"{t:.1f}" for t in out["train"]) + " s", flush=True)
    if not runs["flower"] or not runs["decentralml"]:
        sys.exit("no complete pair of runs to compare")

    print(f"\nflwr {flwr.__version__} simulation engine (3 supernodes, up to 3 actors) vs "
          f"decentralml demo (devnode + local store + 3 CLI contributor processes); "
          f"{args.repeats} alternating runs each, medians; same data and initial weights "
          f"(SHA-256 {init_sha[:12]}..., shards "
          + ", ".join(s[:8] for s in shard_sha) + ")\n")
    print("| round | Flower wall s | Flower train s | Flower overhead s | decentralml wall s | "
          "decentralml train s | decentralml overhead s | wall ratio | accuracy F / d |")
    print("|---|---|---|---|---|---|---|---|---|")

    def med(system: str, key: str, i: int) -> float:
        return statistics.median(run[key][i] for run in runs[system])

    for i in range(args.rounds):
        fw, ft = med("flower", "rounds", i), med("flower", "train", i)
        dw, dt = med("decentralml", "rounds", i), med("decentralml", "train", i)
        fa = runs["flower"][0]["accuracy"][i]
        da = runs["decentralml"][0]["accuracy"][i]
        print(f"| {i + 1} | {fw:.2f} | {ft:.2f} | {fw - ft:.2f} | {dw:.2f} | {dt:.2f} | "
              f"{dw - dt:.2f} | {dw / fw:.2f}x | {fa:.3f} / {da:.3f} |")
    fw_tot = statistics.median(sum(r["rounds"]) for r in runs["flower"])
    dw_tot = statistics.median(sum(r["rounds"]) for r in runs["decentralml"])
    ft_tot = statistics.median(sum(r["train"]) for r in runs["flower"])
    dt_tot = statistics.median(sum(r["train"]) for r in runs["decentralml"])
    print(f"| all | {fw_tot:.2f} | {ft_tot:.2f} | {fw_tot - ft_tot:.2f} | {dw_tot:.2f} | "
          f"{dt_tot:.2f} | {dw_tot - dt_tot:.2f} | {dw_tot / fw_tot:.2f}x | |")
    f_final = [r["accuracy"][-1] for r in runs["flower"]]
    d_final = [r["accuracy"][-1] for r in runs["decentralml"]]
    print(f"\nfinal accuracy: Flower {f_final}, decentralml {d_final} (central baseline "
          f"{runs['decentralml'][0]['central']:.3f}); identical per round: "
          f"{all(r['accuracy'] == runs['flower'][0]['accuracy'] for r in runs['decentralml'])}")
    flower_wall = statistics.median(r["wall"] for r in runs["flower"])
    print(f"whole runs (process wall): Flower {flower_wall:.1f} s incl. simulation start-up; "
          "decentralml federated job "
          f"{statistics.median(r['wall'] for r in runs['decentralml']):.1f} s, whole demo "
          f"{statistics.median(r['whole_demo'] for r in runs['decentralml']):.1f} s (incl. "
          "central baseline)")
    print(f"training-time ratio decentralml / Flower {dt_tot / ft_tot:.2f}x; overhead ratio "
          f"{(dw_tot - dt_tot) / max(fw_tot - ft_tot, 1e-9):.2f}x")


if __name__ == "__main__":
    main()
