"""The model creator: publish tasks from bundle directories or templates, follow them, review
results with a policy, load and federate the contributed models, and run multi-round jobs.

Every method is a short composition of the client, the store and the FL helpers, so a notebook
user can drop one level down at any step.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from decentralml.assets import templates_dir
from decentralml.chain.types import (
    StorageType,
    Submission,
    SubmissionStatus,
    TaskInfo,
    TaskType,
    ValidationStrategy,
)
from decentralml.errors import ChainTimeout, InvalidInput

if TYPE_CHECKING:
    from decentralml.chain.client import Client
    from decentralml.chain.heads import HeadWatch
    from decentralml.chain.policies import Policy
    from decentralml.chain.results import ValidationReport
    from decentralml.chain.types import TaskTerms
    from decentralml.storage.base import Store
    from decentralml.storage.bundle import Bundle

#: Blocks a task stays open by default (about a day at 6 s blocks; the devnode seals on demand).
DEFAULT_EXPIRES_IN = 14_400


class PublishedTask(BaseModel):
    """A task on chain and the bundle behind it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    task_id: int
    assets_cid: str
    storage: StorageType
    escrow: int
    block_number: int
    fee: int


class TaskProgress(BaseModel):
    """How far a task has come: its record plus a count of submissions by status."""

    task: TaskInfo
    counts: dict[str, int]

    @property
    def pending(self) -> int:
        return self.counts.get(SubmissionStatus.PendingValidation.value, 0)


class ModelCreator:
    """Publishes tasks and federates what comes back."""

    def __init__(self, client: Client, store: Store, *, workdir: Path) -> None:
        self.client = client
        self.store = store
        self.workdir = workdir
        self._heads: HeadWatch | None = None
        #: result bundles fetched and verified already, by CID (content-addressed: a CID's bytes
        #: never change), so scoring and federating a result fetch it once, while waiting
        self._fetched: dict[str, Bundle] = {}

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, bundle_dir: Path, *, question: str, reward: int,
                task_type: TaskType = TaskType.ModelContributor, max_assignments: int = 1,
                validation_strategy: ValidationStrategy = ValidationStrategy.ManualAccept,
                expires_in: int = DEFAULT_EXPIRES_IN, requirements: Sequence[str] = (),
                outputs: Sequence[str] = (), metadata: dict[str, Any] | None = None,
                model: Path | None = None, network: bool = False, shards: Path | None = None,
                terms: TaskTerms | None = None) -> PublishedTask:
        """Pack ``bundle_dir``, store and pin it, then ``create_task`` with its CID.

        ``model`` is the creator's ``.keras`` model, shipped in the bundle as ``model.keras`` (a
        staged copy: ``bundle_dir`` is not modified), so every contributor trains the same
        initial model and the updates can be averaged.

        ``network`` declares in the manifest that the task needs network access; contributors
        run it only if they allow it (``--allow-network``), and no task gets it otherwise.

        ``shards`` ships the creator's own data (compute rental): a directory with one
        subdirectory per slot, each packed as a data bundle the manifest lists; the chain assigns
        every slot one shard, and its contributor runs on that shard alone, without data of its
        own. ``max_assignments`` must then equal the number of shards. ``terms`` are the task's
        other protocol-2 terms (pay by contribution); ``shards`` fills in their shard count.

        The arguments are validated before anything is packed or stored, so a bad reward does not
        leave an orphan bundle behind, and the bundle must hold every file its ``start_task.sh``
        and ``template.json`` need (:func:`~decentralml.storage.preflight.check_bundle_runs`): a
        task that cannot run would lock the reward and fail on every contributor's machine.
        """
        if not bundle_dir.is_dir():
            raise InvalidInput("bundle_dir", f"{bundle_dir} is not a directory")
        if model is None:
            return self._publish(bundle_dir, question=question, reward=reward,
                                 task_type=task_type, max_assignments=max_assignments,
                                 validation_strategy=validation_strategy, expires_in=expires_in,
                                 requirements=requirements, outputs=outputs, metadata=metadata,
                                 network=network, shards=shards, terms=terms)
        _check_keras_file(model)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.workdir, prefix="staging-") as tmp:
            staged = Path(tmp) / bundle_dir.name
            shutil.copytree(bundle_dir, staged, symlinks=True)
            shutil.copyfile(model, staged / "model.keras")
            return self._publish(staged, question=question, reward=reward, task_type=task_type,
                                 max_assignments=max_assignments,
                                 validation_strategy=validation_strategy, expires_in=expires_in,
                                 requirements=requirements, outputs=outputs, metadata=metadata,
                                 network=network, shards=shards, terms=terms)

    def _publish(self, bundle_dir: Path, *, question: str, reward: int, task_type: TaskType,
                 max_assignments: int, validation_strategy: ValidationStrategy, expires_in: int,
                 requirements: Sequence[str], outputs: Sequence[str],
                 metadata: dict[str, Any] | None, network: bool = False,
                 shards: Path | None = None, terms: TaskTerms | None = None) -> PublishedTask:
        from decentralml.chain.types import CreateTaskArgs, build
        from decentralml.storage.bundle import pack_bundle
        from decentralml.storage.preflight import check_bundle_runs, declared_entry
        from decentralml.storage.shards import pack_shards

        if expires_in <= 0:
            raise InvalidInput("expires_in", f"is {expires_in}", "> 0 blocks")
        # Dry-run validation with a placeholder CID, against the chain's bounds: the same rules
        # the client applies later, before anything is packed or stored.
        if shards is not None:
            terms = self._shard_terms(shards, max_assignments, terms)
        build(CreateTaskArgs, limits=self.client.limits, task_type=task_type, question=question,
              reward=reward, max_assignments=max_assignments,
              validation_strategy=validation_strategy, assets_cid="x",
              assets_storage=self.store.storage_type, expiration_block=expires_in, terms=terms)
        check_bundle_runs(bundle_dir)
        entry, round_files = declared_entry(bundle_dir)
        shard_cids: tuple[str, ...] = ()
        if shards is not None:
            shard_cids = pack_shards(shards, self.store, task_type=task_type).cids
        packed = pack_bundle(bundle_dir, self.store, task_type=task_type,
                             requirements=tuple(requirements), outputs=tuple(outputs),
                             metadata=metadata, network=network, entry=entry,
                             round_files=round_files, shards=shard_cids)
        self.store.pin(packed.cid)
        created = self.client.create_task(
            task_type=task_type, question=question, reward=reward,
            max_assignments=max_assignments, validation_strategy=validation_strategy,
            assets_cid=packed.cid, assets_storage=self.store.storage_type,
            expires_in=expires_in, terms=terms)
        return PublishedTask(task_id=created.task_id, assets_cid=packed.cid,
                             storage=self.store.storage_type, escrow=reward * max_assignments,
                             block_number=created.block_number, fee=created.fee)

    @staticmethod
    def _shard_terms(shards: Path, max_assignments: int, terms: TaskTerms | None) -> TaskTerms:
        """The task's terms with one shard per slot, refused before anything is packed when the
        shard count and the slots disagree."""
        from decentralml.chain.types import TaskTerms
        from decentralml.storage.shards import shard_dirs

        count = len(shard_dirs(shards))
        if max_assignments != count:
            raise InvalidInput("max_assignments", f"is {max_assignments}, but {shards} holds "
                               f"{count} shards", f"{count}: one slot per shard")
        return (terms or TaskTerms()).model_copy(update={"shards": count})

    def publish_template(self, template: str, dest: Path, **kwargs: Any) -> PublishedTask:
        """Copy ``asset_templates/<template>`` to ``dest`` (kept for editing) and publish it.

        The template's ``template.json`` supplies the task type, requirements, outputs and
        ``network`` (whether the task needs network access) unless ``kwargs`` give them.
        """
        source = templates_dir() / template
        if not source.is_dir():
            known = sorted(p.name for p in templates_dir().iterdir()
                           if (p / "start_task.sh").is_file())
            raise InvalidInput("template", f"unknown template {template!r}", f"one of {known}")
        if not dest.exists():
            shutil.copytree(source, dest)
        described = source / "template.json"
        if described.is_file():
            meta = json.loads(described.read_text(encoding="utf-8"))
            defaults = {"task_type": TaskType(meta["task_type"]),
                        "requirements": tuple(meta.get("requirements", ())),
                        "outputs": tuple(meta.get("outputs", ())),
                        "network": bool(meta.get("network", False))}
            for key, value in defaults.items():
                if kwargs.get(key) is None:
                    kwargs[key] = value
        return self.publish(dest, **{k: v for k, v in kwargs.items() if v is not None})

    # --- following ----------------------------------------------------------------------------

    def progress(self, task_id: int) -> TaskProgress:
        subs = self.client.task_submissions(task_id)
        return TaskProgress(task=self.client.task(task_id),
                            counts=dict(Counter(s.status.value for s in subs)))

    def results(self, task_id: int, status: SubmissionStatus | None = None) -> list[Submission]:
        subs = self.client.task_submissions(task_id)
        return [s for s in subs if status is None or s.status is status]

    def heads(self) -> HeadWatch | None:
        """The subscription to new blocks the creator waits on (started once), or None when
        the client has no websocket URL."""
        if self._heads is None:
            url = getattr(self.client, "url", None)
            if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
                return None
            from decentralml.chain.heads import HeadWatch

            self._heads = HeadWatch(url)
            self._heads.start()
        return self._heads

    def stop_watching(self) -> None:
        """Stop the block subscription (the client is the caller's to close)."""
        if self._heads is not None:
            self._heads.stop()
            self._heads = None

    def wait_for_results(self, task_id: int, count: int, *, timeout: float,
                         poll: float = 0.5,
                         on_arrival: Callable[[list[Submission]], None] | None = None
                         ) -> list[Submission]:
        """Until ``count`` results are submitted (pending or already accepted), or ChainTimeout.

        Looks again at each new block the node announces (:meth:`heads`); every ``poll``
        seconds only while that subscription is down. The results in so far are fetched
        (:meth:`prefetch`) and given to ``on_arrival`` while the others are still working.
        """
        done = (SubmissionStatus.PendingValidation, SubmissionStatus.Accepted)
        deadline = time.monotonic() + timeout
        heads = self.heads()
        while True:
            seen = heads.head if heads is not None else -1
            subs = [s for s in self.client.task_submissions(task_id) if s.status in done]
            self.prefetch(subs)  # while the others are still working
            if on_arrival is not None:
                on_arrival(subs)
            if len(subs) >= count:
                return subs
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChainTimeout(f"task {task_id}: {len(subs)} of {count} results after "
                                   f"{timeout:.0f} s")
            if heads is not None and heads.subscribed:
                heads.wait_beyond(seen, min(left, 30.0))
            else:
                time.sleep(min(poll, left))

    # --- reviewing and federating -------------------------------------------------------------

    def validate(self, task_id: int, policy: Policy) -> ValidationReport:
        """Judge every pending result of ``task_id`` with ``policy``, in one extrinsic."""
        return self.client.validate_task_result(task_id, policy=policy)

    def accepted_results(self, task_id: int) -> list[Submission]:
        return self.results(task_id, SubmissionStatus.Accepted)

    def prefetch(self, submissions: Iterable[Submission]) -> None:
        """Fetch and verify the results behind ``submissions`` that are not fetched yet, so the
        validation and the federation that follow load them from disk. A result that cannot be
        fetched is left for them to report."""
        from decentralml.errors import DecentralMLError
        from decentralml.fl.federate import _CID_RE
        from decentralml.storage.bundle import fetch_bundle

        root = self.workdir / "updates" / "fetched"
        for sub in submissions:
            cid = sub.result_cid
            if not cid or cid in self._fetched or not _CID_RE.match(cid):
                continue
            root.mkdir(parents=True, exist_ok=True)
            dest = Path(tempfile.mkdtemp(dir=root)) / cid
            try:
                self._fetched[cid] = fetch_bundle(self.store, cid, dest)
            except DecentralMLError:
                continue

    def load_contributor_models(self, submissions: Iterable[Submission], like: Any, *,
                                on_error: Literal["skip", "raise"] = "skip") -> Any:
        """Fetch, verify and load the weights-only updates behind ``submissions``.

        Returns the loaded updates (a list) with ``.rejected`` naming what was skipped and why;
        ``on_error="raise"`` raises the first problem instead.
        """
        from decentralml.fl import load_contributor_models

        # a fresh directory per call: a fetch never writes over an earlier one; a result fetched
        # before (prefetched while waiting, or scored by a policy) is loaded from where it is
        root = self.workdir / "updates"
        root.mkdir(parents=True, exist_ok=True)
        return load_contributor_models(list(submissions), self.store, like=like,
                                       workdir=Path(tempfile.mkdtemp(dir=root)),
                                       on_error=on_error, fetched=self._fetched)

    def federate(self, task_id: int, model: Any, strategy: Any = None, *,
                 in_place: bool = False) -> Any:
        """Load the task's accepted updates and return ``model`` with the aggregated weights.

        ``strategy`` is an aggregator or a registry name (``"fedadam"``, see
        :func:`decentralml.fl.strategy_from_name`); default FedAvg. Pass the same strategy object
        every round of a job: server optimizers keep their state in it. The result is a new model
        unless ``in_place`` (rebuilding a Keras model costs tens of milliseconds a round).
        """
        from decentralml.fl import federated_contributors_model
        from decentralml.fl.federate import resolve_strategy

        chosen = resolve_strategy(strategy)  # a bad name fails before anything is fetched
        updates = self.load_contributor_models(self.accepted_results(task_id), like=model)
        if not updates:
            raise InvalidInput("task_id", f"task {task_id} has no accepted results to federate")
        return federated_contributors_model(model, updates, chosen, in_place=in_place)

    def close(self, task_id: int) -> Any:
        return self.client.close_task(task_id)

    def task_model(self, task_id: int, model_file: str = "model.keras") -> Any:
        """The model a task ships (fetched, verified, loaded with ``safe_mode=True``)."""
        from decentralml.fl import load_model
        from decentralml.storage.bundle import fetch_bundle

        task = self.client.task(task_id)
        dest = self.workdir / "tasks" / f"task-{task_id}"
        if dest.exists():
            shutil.rmtree(dest)
        bundle = fetch_bundle(self.store, task.assets_cid, dest)
        path = bundle.path / model_file
        if not path.is_file():
            raise InvalidInput("task_id", f"task {task_id}'s bundle has no {model_file}")
        return load_model(path)

    def fetch_result(self, submission: Submission) -> Any:
        """A submission's result bundle, fetched and verified (CID, then manifest)."""
        from decentralml.storage.bundle import fetch_bundle

        if submission.result_cid is None:
            raise InvalidInput("submission", f"submission {submission.submission_id} has no "
                               "result CID")
        dest = self.workdir / "results" / f"submission-{submission.submission_id}"
        if dest.exists():
            shutil.rmtree(dest)
        return fetch_bundle(self.store, submission.result_cid, dest)

    def annotation_results(self, task_id: int, file: str = "result.json") -> list[dict[str, Any]]:
        """The accepted annotators' JSON results of ``task_id`` (for :func:`merge_annotations`)."""
        out: list[dict[str, Any]] = []
        for sub in self.accepted_results(task_id):
            bundle = self.fetch_result(sub)
            path = bundle.path / file
            if not path.is_file():
                raise InvalidInput("file", f"submission {sub.submission_id}'s result has no "
                                   f"{file}")
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise InvalidInput("file", f"submission {sub.submission_id}'s {file} is not a "
                                   "JSON object")
            out.append(data)
        return out


def _check_keras_file(path: Path) -> None:
    """A ``.keras`` file is a zip holding ``config.json``: checked before anything is copied.

    Loading it would prove more but imports TensorFlow in the creator's process for a copy; the
    contributors load it with ``safe_mode=True`` anyway.
    """
    import zipfile

    if not path.is_file():
        raise InvalidInput("model", f"{path} is not a file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        names = set()
    if "config.json" not in names:
        raise InvalidInput("model", f"{path} is not a Keras .keras file",
                           "a model saved with decentralml.fl.save_model or model.save()")
