"""The ``lepidopt`` command: one registry of subcommands, each a thin layer over a documented function.

Nothing heavy is imported at module level, so ``lepidopt --help`` answers without TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import functools
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, Sequence, cast

from .errors import LepidoptError, ModelError, SettingError, naming_flags

if TYPE_CHECKING:
    from .data import DataSpec
    from .predictor import Item, Predictor
    from .workers import WorkerSettings

__all__ = ["main"]

log = logging.getLogger("lepidopt")
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
# Settings whose Python name is not their flag's; the others are the flag's name with '_' for '-'.
_FLAG_OF = {"data": "--data", "path": "--model", "interval": "--heartbeat", "outage": "--storage-outage",
            "head_checkpoint_every": "--checkpoint-every", "image_size": "--size",
            "feature_cache": "--no-feature-cache"}


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line that points at --help, instead of the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = func
        return func

    return register


def _data_options(parser: argparse.ArgumentParser, *, required_source: bool) -> None:
    group = parser.add_argument_group("data source", None if required_source else
                                      "read when a study is created; a resumed study reads them from its run.yaml")
    if required_source:
        group.add_argument("source",
                           help="an image folder (one subfolder per class), an ETHEC .json or a .csv manifest")
    else:
        group.add_argument("--data", dest="source", help="an image folder, an ETHEC .json or a .csv manifest "
                           "(needed to start a study; a resume reads it from run.yaml)")
    group.add_argument("--format", choices=("auto", "folder", "ethec", "csv"),
                       help="the source's kind (default: from the path)")
    group.add_argument("--label-level", choices=("family", "subfamily", "genus", "species"),
                       help="ETHEC: which rank is the class (species = genus_specific_epithet; default family)")
    group.add_argument("--image-root",
                       help="manifests: folder the image paths are relative to (default: the manifest's folder)")
    group.add_argument("--path-column", help="CSV: column of image paths (default: path)")
    group.add_argument("--label-column", help="CSV: column of labels (default: label)")
    group.add_argument("--val-manifest",
                       help="the source's own validation manifest (the source is then its train part)")
    group.add_argument("--test-manifest", help="the source's own test manifest (with --val-manifest)")
    group.add_argument("--min-size", type=int, help="skip images whose shorter side is below this (px; default 32)")
    group.add_argument("--min-per-class", type=int,
                       help="drop classes with fewer usable images (default 10, at least 3); with --levels, a fine "
                       "class with fewer keeps its images at the level above")
    group.add_argument("--levels", help="a taxonomy's levels, coarse to fine, comma-separated: ETHEC's family,"
                       "subfamily,genus,species (any two or more, in order), a CSV's label columns, or the names of "
                       "nested class folders' depths (root/family/genus/img.jpg: family,genus); every level is "
                       "learned and scored")


def _data_spec(args: argparse.Namespace) -> DataSpec | None:
    """The DataSpec the data options give; None when no source is given, after refusing data options that then
    apply to nothing (a resumed study reads its data settings from its run.yaml)."""
    from .data import DataSpec

    keys = ("format", "label_level", "image_root", "path_column", "label_column", "val_manifest", "test_manifest",
            "min_size", "min_per_class", "levels")
    given: dict[str, Any] = {key: getattr(args, key, None) for key in keys if getattr(args, key, None) is not None}
    if args.source is None:
        if given:
            key = next(iter(given))
            raise SettingError(key, given[key], "applies to --data, which is not given: a resumed study reads its data "
                               "settings from its run.yaml, and they cannot change.",
                               fix="Drop it, or start a new --study with --data.")
        return None
    return DataSpec(source=args.source, **given)


def build_parser() -> argparse.ArgumentParser:
    from .engines import PRUNERS, SAMPLERS, STRATEGIES, TUNERS, engine_names
    from .trial import DECODERS, OBJECTIVES

    parser = _Parser(
        prog="lepidopt",
        description="Hyperparameter search for transfer learning on images: a ResNet-50 backbone, a new head, "
                    "augmentation, class undersampling and unfreezing, searched with Optuna or Keras Tuner.",
        epilog="Start with: lepidopt demo. Every command has its own --help.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show per-epoch detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="show warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="look at a data source, or draw the demo collection")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    inspect = data_sub.add_parser("inspect", help="class counts, imbalance ratio and skipped files of a source")
    _data_options(inspect, required_source=True)
    demo_data = data_sub.add_parser("demo", help="draw the synthetic demo collection into a folder")
    demo_data.add_argument("out", help="folder to write (one subfolder per family)")
    demo_data.add_argument("--scale", type=float, default=0.1, help="fraction of ETHEC's family sizes (default 0.1)")
    demo_data.add_argument("--size", type=int, default=96, help="image side in px (default 96, at least 32)")
    demo_data.add_argument("--seed", type=int, default=0)
    demo_data.add_argument("--manifest", action="store_true", help="also write an ETHEC-format JSON manifest")
    demo_data.add_argument("--genera", type=int, default=1,
                           help="genera per family, 1 to 5, drawn as variants of it and named in the manifest "
                           "(search them with --label-level genus; default 1); pairs of them form subfamilies")
    demo_data.add_argument("--species", type=int, default=1,
                           help="species per genus, 1 to 3, drawn as variants of it and named in the manifest "
                           "(default 1: a random epithet, not drawn); with --genera, a four-level taxonomy")

    spaces = sub.add_parser("spaces", help="list, show or validate search spaces")
    spaces_sub = spaces.add_subparsers(dest="spaces_command", metavar="ACTION")
    spaces_sub.add_parser("list", help="the built-in spaces")
    show = spaces_sub.add_parser("show", help="print a space as YAML")
    show.add_argument("name", help="a built-in name or a YAML file")
    validate = spaces_sub.add_parser("validate", help="check a space file and say what is wrong")
    validate.add_argument("file")

    search = sub.add_parser("search", help="create or resume a study and run trials")
    _data_options(search, required_source=False)
    _study_options(search)
    search.add_argument("--space", help="a built-in space (resnet50, demo) or a YAML file (needed to start a study)")
    search.add_argument("--n-trials", type=int, help="the study's total of finished trials; a re-run stops there")
    search.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    search.add_argument("--engine", choices=engine_names(),
                        help="what chooses the trials (default optuna; kept in run.yaml)")
    search.add_argument("--sampler", choices=SAMPLERS, help="Optuna: default tpe")
    search.add_argument("--pruner", choices=PRUNERS, help="Optuna: default median")
    search.add_argument("--strategy", choices=STRATEGIES,
                        help="Optuna: staged trains heads first and fine-tunes the top quarter of them, within half "
                        "the time, less while fine-tuning does not beat the heads (the default when the space "
                        "searches whether to fine-tune); joint samples whole recipes (the default for other spaces); "
                        "kept in run.yaml")
    search.add_argument("--tuner", choices=TUNERS,
                        help="Keras Tuner's oracle (default hyperband)")
    search.add_argument("--seed", type=int, help="seeds the split, the sampler and every trial (default 0)")
    search.add_argument("--objective",
                        help=f"validation metric to optimise: {', '.join(OBJECTIVES)} (default balanced_accuracy); "
                        "with --levels also a level's (species.balanced_accuracy), the levels' mean (mean.macro_f1, "
                        "which the plain names also mean there), tree.consistent_share or tree.hierarchical_distance")
    search.add_argument("--decode", choices=DECODERS,
                        help="with --levels: each level's own most probable class (independent, the default) or the "
                        "most probable path of the tree (consistent); kept in run.yaml")
    search.add_argument("--weights", help="backbone weights for every trial: imagenet, none or a local file "
                        "(default: the space's)")
    search.add_argument("--create-only", action="store_true",
                        help="make the study (split, run.yaml, storage, total) and run no trial: then start workers")
    cache = search.add_argument_group("feature cache", "study settings, kept in run.yaml")
    cache.add_argument("--no-feature-cache", dest="feature_cache", action="store_const", const=False,
                       help="recompute backbone features in every trial, augmenting on the fly (exact; for "
                       "comparison; cannot change within a study)")
    cache.add_argument("--augment-views", type=int,
                       help="augmented feature passes cached per augmentation strength; epoch e trains on view "
                       "e mod N (default 4; cannot change within a study)")
    cache.add_argument("--feature-cache-limit", metavar="SIZE",
                       help="most disk the study's feature cache may take, e.g. 20GB (default 50GB; may change on a "
                       "resume)")
    _worker_options(search)

    worker = sub.add_parser("worker", help="join an existing study and run its trials (one of many workers)")
    worker.add_argument("--study", required=True, help="the study's name")
    worker.add_argument("--storage", help="the study's storage URL: postgresql://..., mysql://..., sqlite:///PATH or "
                        "journal:PATH (default: the one in the study's run.yaml under --results-dir)")
    worker.add_argument("--results-dir", help="where the study's folder is on this machine (default: where it was "
                        "created, as the study records it; without --storage, ./results)")
    worker.add_argument("--n-trials", type=int, help="the study's total (default: the total it was created with)")
    worker.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    keras_tuner = worker.add_argument_group(
        "Keras Tuner studies", "one worker with --tuner-id chief serves the oracle; the others (tuner0, tuner1, ...) "
        "run its trials. Each flag defaults to its KERASTUNER_* environment variable.")
    keras_tuner.add_argument("--engine", choices=engine_names(), help="the study's engine (checked)")
    keras_tuner.add_argument("--tuner-id", help="chief, or this worker's id: tuner0, tuner1, ...")
    keras_tuner.add_argument("--oracle-ip", help="the chief's address, e.g. 10.0.0.5 (the chief listens on it)")
    keras_tuner.add_argument("--oracle-port", type=int, help="the chief's port, e.g. 8000")
    _worker_options(worker)

    recover = sub.add_parser("recover",
                             help="after a worker died on a journal storage (no heartbeat): retry its trials")
    _study_options(recover, create=False)
    recover.add_argument("--retries", type=int, default=3, help="most retries of one trial (default 3)")
    recover.add_argument("--force", action="store_true",
                         help="also recover running trials of other machines (make sure no worker runs there)")

    proxy = sub.add_parser("storage-proxy", help="serve Optuna's gRPC storage proxy in front of a database, for "
                           "many workers (they give --storage grpc://HOST:PORT)")
    proxy.add_argument("--storage", required=True, help="the database: postgresql://..., mysql://... or sqlite:///PATH")
    proxy.add_argument("--host", default="localhost", help="the address to listen on (default localhost; 0.0.0.0 for "
                       "every interface)")
    proxy.add_argument("--port", type=int, default=13000, help="the port to listen on (default 13000)")
    proxy.add_argument("--threads", type=int, default=10, help="calls served at once (default 10)")

    status = sub.add_parser("status", help="the trials table and the best trial of a study")
    _study_options(status, create=False)
    status.add_argument("--last", type=int, help="show only the last N trials")

    export = sub.add_parser("export", help="retrain the best trial, save it and evaluate it on the test split")
    _study_options(export, create=False)
    export.add_argument("--all-splits", action="store_true", help="save embeddings of every split, not just test")
    export.add_argument("--trial", type=int, metavar="N", help="export completed trial N instead of the best")
    export.add_argument("--format", dest="formats", default="keras", metavar="FORMATS",
                        help="comma-separated: keras (always written), savedmodel, onnx (needs lepidopt[onnx]), "
                        "litert; each is checked against the Keras model on the test split (default keras)")

    report = sub.add_parser("report", help="the HTML report of a study's best model, or of embeddings you bring")
    report.add_argument("--study", help="the study to report on (exports its best trial first if needed)")
    report.add_argument("--storage", help="the study's storage URL (default: from its run.yaml)")
    report.add_argument("--results-dir", help="where the study's folder is (default results, or where the study "
                        "records it when --storage is given)")
    report.add_argument("--embeddings", help="instead of a study: a .npy array (points x features), or the .npz "
                        "that lepidopt export writes (best/embeddings.npz: its labels come with it)")
    report.add_argument("--labels", help="with --embeddings: a .npy array, a .txt file with one label per line, or a "
                        ".csv file (with or without a header; see --label-column)")
    report.add_argument("--label-column", help="with a .csv --labels file: the column to read, by name (with a header) "
                        "or by position counted from 1 (default: the column named label, or the only column)")
    report.add_argument("--out", help="with --embeddings: folder to write (default report)")
    report.add_argument("--k-min", type=int, default=2, help="smallest k of the elbow search (default 2)")
    report.add_argument("--k-max", type=int, help="largest k of the elbow search (default 15, or one less than the "
                        "number of points when they are fewer)")
    report.add_argument("--umap-components", type=int, default=10, help="UMAP dimensions KMeans runs in (default 10)")
    report.add_argument("--no-dashboard", action="store_true", help="do not attach figures and artifacts to the study")

    predict = sub.add_parser("predict", help="classify images with a study's exported model: a table of top-k "
                             "labels and probabilities")
    _model_options(predict)
    predict.add_argument("sources", nargs="+", metavar="SOURCE", help="folders (searched recursively), image files, "
                         "CSV or ETHEC manifests, or .txt files of paths (one per line)")
    predict.add_argument("--out", default="predictions.csv",
                         help="the table to write: .csv, .jsonl or .parquet (default predictions.csv)")
    predict.add_argument("--top-k", type=int, default=3, help="labels per image, most probable first (default 3)")
    predict.add_argument("--all-probabilities", action="store_true", help="also a p:CLASS column for every class")
    _manifest_options(predict)

    evaluate = sub.add_parser("evaluate", help="a model's metrics on labelled images (folder, CSV or ETHEC manifest)")
    _model_options(evaluate)
    evaluate.add_argument("source", help="a folder with one subfolder per class, a CSV or an ETHEC manifest")
    evaluate.add_argument("--out", help="also write the metrics to this JSON file")
    evaluate.add_argument("--format", choices=("auto", "folder", "ethec", "csv"),
                          help="the source's kind (default: from the path)")
    _manifest_options(evaluate)

    embed = sub.add_parser("embed", help="penultimate-layer embeddings of any images, for report --embeddings")
    _model_options(embed)
    embed.add_argument("sources", nargs="+", metavar="SOURCE", help="as for predict")
    embed.add_argument("--out", default="embeddings.npz", help="a .npz with paths and labels inside (what report "
                       "--embeddings reads), or a .npy with X.paths.csv of path and label beside it "
                       "(default embeddings.npz)")
    _manifest_options(embed)

    dashboard = sub.add_parser("dashboard", help="open a study in optuna-dashboard (figures, note, artifacts)")
    _study_options(dashboard, create=False)
    dashboard.add_argument("--port", type=int, default=8080, help="default 8080")
    dashboard.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")

    demo = sub.add_parser("demo", help="draw the demo collection if absent and run a small study on it")
    demo.add_argument("--data-dir", help="where the demo images live (default demo-data, or demo-data-taxonomy)")
    demo.add_argument("--results-dir", default="results", help="where studies land (default results)")
    demo.add_argument("--study", help="the study's name (default demo, or demo-taxonomy)")
    demo.add_argument("--taxonomy", action="store_true",
                      help="draw the collection as a tree (6 families, 12 subfamilies, 18 genera, 36 species) and "
                      "learn and report every level")
    demo.add_argument("--n-trials", type=int, default=10)
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the model", "a study's best/model.keras (lepidopt export writes it), or a file")
    which = group.add_mutually_exclusive_group(required=True)
    which.add_argument("--study", help="the study whose exported model to use")
    which.add_argument("--model", help="a model.keras lepidopt exported, or its folder")
    group.add_argument("--results-dir", default="results", help="with --study: where its folder is (default results)")
    group.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")


def _manifest_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("manifests")
    group.add_argument("--path-column", default="path", help="CSV: column of image paths (default path)")
    group.add_argument("--label-column", default="label", help="CSV: column of labels, if any (default label)")
    group.add_argument("--label-level", choices=("family", "subfamily", "genus", "species"),
                       help="ETHEC: which rank is the label (default: the study's)")
    group.add_argument("--image-root", help="manifests: folder the image paths are relative to (default: the "
                       "manifest's folder)")
    if parser.prog.split()[-1] != "evaluate":
        group.add_argument("--class-folders", action="store_true", help="a folder's subfolders are the images' "
                           "labels, as a study reads a folder (default: every image below it, unlabelled)")


def _loaded_model(args: argparse.Namespace) -> Predictor:
    from .api import load_model

    return load_model(args.model, study=args.study, results_dir=args.results_dir)


def _items(args: argparse.Namespace, model: Predictor) -> list[Item]:
    from .api import items_of

    level = args.label_level or model.card.data.get("label_level", "family")
    return items_of(args.sources, path_column=args.path_column, label_column=args.label_column, label_level=level,
                    image_root=args.image_root, class_folders=args.class_folders)


def _worker_options(parser: argparse.ArgumentParser) -> None:
    speed = parser.add_argument_group("memory")
    speed.add_argument("--max-trials-per-process", type=int, metavar="N",
                       help="run trials in a worker process that is replaced after N trials")
    speed.add_argument("--max-rss", metavar="SIZE",
                       help="replace the trial worker process when its resident memory passes SIZE after a trial, "
                       "e.g. 6GB")
    failures = parser.add_argument_group("dead workers, checkpoints and failures")
    failures.add_argument("--heartbeat", type=int, default=60, metavar="S",
                          help="seconds between a running trial's heartbeats (RDB storages; default 60)")
    failures.add_argument("--grace", type=int, default=300, metavar="S",
                          help="a trial silent this long has a dead worker: it is failed and retried (default 300)")
    failures.add_argument("--storage-outage", type=float, metavar="S",
                          help="wait this long for a storage that stopped answering, training on, then exit with "
                          "code 11 (default: --grace less --heartbeat less 15, 225 s)")
    failures.add_argument("--retries", type=int, default=3, help="most retries of one trial (default 3)")
    failures.add_argument("--checkpoint-every", type=float, default=30.0, metavar="S",
                          help="seconds between checkpoints while a head trains; fine-tuning saves every epoch "
                          "(default 30)")
    failures.add_argument("--max-failures", type=int, default=5, metavar="M",
                          help="stop after M failed trials in a row (default 5)")


def _worker_settings(args: argparse.Namespace) -> WorkerSettings:
    from .api import Heartbeat, Recycling, TrialPolicy, WorkerSettings

    return WorkerSettings(
        recycling=Recycling(max_trials_per_process=args.max_trials_per_process, max_rss=args.max_rss),
        heartbeat=Heartbeat(interval=args.heartbeat, grace=args.grace, retries=args.retries,
                            outage=args.storage_outage),
        policy=TrialPolicy(head_checkpoint_every=args.checkpoint_every, max_failures=args.max_failures))


def _study_options(parser: argparse.ArgumentParser, *, create: bool = True) -> None:
    parser.add_argument("--study", required=True, help="the study's name; also its folder under --results-dir")
    if create:
        parser.add_argument("--storage", help="sqlite:///PATH, postgresql://..., mysql://... or journal:PATH "
                            "(default: SQLite at RESULTS/STUDY/study.db); a relative file path is made absolute")
        parser.add_argument("--results-dir", default="results", help="where studies land (default results)")
    else:
        parser.add_argument("--storage", help="the study's storage URL (default: the one in its run.yaml)")
        parser.add_argument("--results-dir", help="where the study's folder is (default results, or where the study "
                            "records it when --storage is given)")


@command("data")
def _data(args: argparse.Namespace) -> int:
    if args.data_command == "inspect":
        from .data import format_scan, scan_source

        print(format_scan(scan_source(cast("DataSpec", _data_spec(args))), source=args.source))  # source is required
        return 0
    if args.data_command == "demo":
        from .data import make_demo_collection

        made = make_demo_collection(args.out, scale=args.scale, image_size=args.size, seed=args.seed,
                                    manifest=args.manifest, genera=args.genera, species=args.species)
        print(f"wrote {sum(made.counts.values())} images in {len(made.counts)} classes to {made.root}")
        for name, n in made.counts.items():
            print(f"  {name}: {n}")
        if args.genera > 1:
            print(f"{len(made.genera)} genera (the manifest's genus): "
                  + ", ".join(f"{name} {n}" for name, n in made.genera.items()))
        if args.species > 1:
            print(f"{len(made.species)} species (the manifest's genus_specific_epithet): "
                  + ", ".join(f"{name} {n}" for name, n in made.species.items()))
        if made.manifest:
            print(f"ETHEC manifest: {made.manifest}")
        return 0
    return _usage("data", "inspect SOURCE | demo OUT")


@command("spaces")
def _spaces(args: argparse.Namespace) -> int:
    from .spaces import builtin_space_names, load_space

    if args.spaces_command == "list":
        for name in builtin_space_names():
            space = load_space(name)
            print(f"{name:<10} {len(space.params)} params  {space.description}")
        return 0
    if args.spaces_command == "show":
        print(load_space(args.name).to_yaml(), end="")
        return 0
    if args.spaces_command == "validate":
        from .spaces import load_space_file

        space = load_space_file(args.file)
        print(f"{args.file}: valid space {space.name!r} with {len(space.params)} params"
              f"{' and a baseline' if space.baseline else ''}")
        return 0
    return _usage("spaces", "list | show NAME | validate FILE")


@command("search")
def _search(args: argparse.Namespace) -> int:
    from .api import format_status, search

    summary = search(study=args.study, data=_data_spec(args), space=args.space, results_dir=args.results_dir,
                     n_trials=args.n_trials, timeout=args.timeout, storage=args.storage, sampler=args.sampler,
                     pruner=args.pruner, strategy=args.strategy, seed=args.seed, objective=args.objective,
                     decode=args.decode,
                     weights=args.weights,
                     augment_views=args.augment_views, feature_cache=args.feature_cache,
                     feature_cache_limit=args.feature_cache_limit, engine=args.engine, tuner=args.tuner,
                     create_only=args.create_only, workers=_worker_settings(args))
    print(format_status(summary.status, last=20))
    print(f"\nresults: {summary.run.folder}")
    if args.create_only:
        print(f"start workers with: lepidopt worker --study {args.study} --storage URL")
    return 0


@command("worker")
def _worker(args: argparse.Namespace) -> int:
    from .api import KerasTunerRole, worker

    role = KerasTunerRole.from_flags(tuner_id=args.tuner_id, oracle_ip=args.oracle_ip, oracle_port=args.oracle_port) \
        if args.tuner_id or args.oracle_ip or args.oracle_port else None
    summary = worker(study=args.study, storage=args.storage, results_dir=args.results_dir, n_trials=args.n_trials,
                     timeout=args.timeout, engine=args.engine, keras_tuner=role, workers=_worker_settings(args))
    print(f"worker ran {summary.ran} trials in {summary.seconds:.0f} s; study {args.study!r} now holds "
          f"{summary.finished} finished trials")
    return 0


@command("recover")
def _recover(args: argparse.Namespace) -> int:
    from .api import recover

    summary = recover(study=args.study, storage=args.storage, results_dir=args.results_dir, retries=args.retries,
                      force=args.force)
    print(f"retried {len(summary.retried)} trials: {list(summary.retried)}")
    if summary.left:
        print(f"left {len(summary.left)} running trials alone (their worker is alive here, or runs on another "
              f"machine: --force): {list(summary.left)}")
    return 0


@command("storage-proxy")
def _storage_proxy(args: argparse.Namespace) -> int:
    from .api import storage_proxy

    storage_proxy(storage=args.storage, host=args.host, port=args.port, threads=args.threads)
    return 0


@command("status")
def _status(args: argparse.Namespace) -> int:
    from .api import format_status, status

    print(format_status(status(study=args.study, storage=args.storage, results_dir=args.results_dir), last=args.last))
    return 0


@command("export")
def _export(args: argparse.Namespace) -> int:
    from .api import export_best

    result = export_best(study=args.study, storage=args.storage, results_dir=args.results_dir,
                         all_splits=args.all_splits, formats=args.formats, trial=args.trial)
    m, t = result.metrics, result.metrics["test"]
    which = "best trial" if args.trial is None else "trial"
    print(f"{which} #{m['trial']}: validation {m['objective']} {m['trial_validation_value']:.4f} in the study, "
          f"{m['retrained_validation_value']:.4f} retrained")
    print(f"test ({t['n_images']} images): accuracy {t['accuracy']:.4f}, "
          f"balanced accuracy {t['balanced_accuracy']:.4f}, "
          f"macro F1 {t['macro_f1']:.4f}, weighted F1 {t['weighted_f1']:.4f}")
    for name, check in m["formats"].items():
        if name != "keras":
            print(f"{name}: {'kept' if check['passed'] else 'FAILED, removed'}: {check['verdict']}")
    print(f"model, metrics and embeddings: {result.folder}")
    failed = [name for name, check in m["formats"].items() if not check["passed"]]
    if failed:
        raise ModelError(f"export to {', '.join(failed)}", "did not reproduce the Keras model on the test split; "
                         "the file was removed and the rest of the export kept.",
                         fix="Use the formats that passed, or report the figures in metrics.json.")
    return 0


@command("predict")
def _predict(args: argparse.Namespace) -> int:
    from .api import check_prediction_settings, write_predictions

    check_prediction_settings(out=args.out, top_k=args.top_k, output_format=None, batch_size=args.batch_size)
    model = _loaded_model(args)
    written = write_predictions(model, _items(args, model), out=args.out, top_k=args.top_k,
                                all_probabilities=args.all_probabilities, batch_size=args.batch_size)
    skipped = f"; {len(written.skipped)} skipped (their rows say why)" if written.skipped else ""
    print(f"{written.images} images classified{skipped}: {written.out}")
    return 0


@command("evaluate")
def _evaluate(args: argparse.Namespace) -> int:
    import json

    model = _loaded_model(args)
    metrics = model.evaluate(args.source, format=args.format or "auto", label_level=args.label_level,
                             path_column=args.path_column, label_column=args.label_column,
                             image_root=args.image_root, batch_size=args.batch_size)
    print(f"{metrics['n_images']} images scored of {metrics['n_images_in_source']}: "
          f"accuracy {metrics['accuracy']:.4f}, balanced accuracy {metrics['balanced_accuracy']:.4f}, "
          f"macro F1 {metrics['macro_f1']:.4f}, weighted F1 {metrics['weighted_f1']:.4f}")
    for row in metrics["per_class"]:
        print(f"  {row['class']:<24} precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
              f"f1 {row['f1']:.3f}  support {row['support']}")
    if metrics["unknown_labels"]:
        unknown = ", ".join(f"{label} ({n})" for label, n in metrics["unknown_labels"].items())
        print(f"not scored, labels the model does not know: {unknown}")
    for skipped in metrics["skipped"]:
        print(f"skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    if args.out:
        from ._files import write_text_atomically

        write_text_atomically(args.out, json.dumps(metrics, indent=1))
        print(f"metrics: {args.out}")
    return 0


@command("embed")
def _embed(args: argparse.Namespace) -> int:
    from .api import check_embedding_settings, write_embeddings

    check_embedding_settings(out=args.out, batch_size=args.batch_size)
    model = _loaded_model(args)
    written = write_embeddings(model, _items(args, model), out=args.out, batch_size=args.batch_size)
    skipped = f"; {len(written.skipped)} skipped" if written.skipped else ""
    print(f"{written.images} embeddings{skipped}: {written.out}")
    return 0


@command("report")
def _report(args: argparse.Namespace) -> int:
    from .api import ClusteringSettings, report_embeddings, report_study

    if bool(args.study) == bool(args.embeddings):
        return _usage_error("report", "give either --study NAME or --embeddings X.npy --labels LABELS")
    if args.study and (args.labels or args.label_column or args.out):
        return _usage_error("report", "--labels, --label-column and --out go with --embeddings; a study's report is "
                            "written to its folder, RESULTS/STUDY/report")
    settings = ClusteringSettings(k_min=args.k_min, k_max=args.k_max, umap_components=args.umap_components)
    if args.study:
        result = report_study(study=args.study, storage=args.storage, results_dir=args.results_dir, settings=settings,
                              dashboard=not args.no_dashboard)
    else:
        result = report_embeddings(embeddings=args.embeddings, labels=args.labels, label_column=args.label_column,
                                   out=args.out or "report", settings=settings)
    print(result.clustering.verdict)
    print(f"report: {result.index}")
    return 0


@command("dashboard")
def _dashboard(args: argparse.Namespace) -> int:
    from .api import serve_dashboard

    serve_dashboard(study=args.study, storage=args.storage, results_dir=args.results_dir, host=args.host,
                    port=args.port)
    return 0


@command("demo")
def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .api import format_status

    demo = run_demo(data_dir=args.data_dir, results_dir=args.results_dir, study=args.study, n_trials=args.n_trials,
                    taxonomy=args.taxonomy)
    summary = demo.search
    print(format_status(summary.status))
    print(f"\nresults: {summary.run.folder}")
    print(f"report: {demo.report.index}")
    study = summary.run.study
    print(f"review in optuna-dashboard: lepidopt dashboard --study {study} --results-dir {args.results_dir}")
    print(f"classify images with the model found: lepidopt predict --study {study} --results-dir "
          f"{args.results_dir} FOLDER")
    print(f"took {demo.seconds:.0f} s")
    return 0


def _usage(name: str, actions: str) -> int:
    print(f"usage: lepidopt {name} {actions} (see lepidopt {name} --help)", file=sys.stderr)
    return 2


def _usage_error(name: str, message: str) -> int:
    print(f"lepidopt {name}: error: {message} (see lepidopt {name} --help)", file=sys.stderr)
    return 2


def _flag(parser: argparse.ArgumentParser, setting: str) -> str:
    """The flag that sets the Python argument ``setting`` in any command, or the name itself."""
    if setting in _FLAG_OF:
        return _FLAG_OF[setting]
    pending = [parser]
    while pending:
        for action in pending.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += list(action.choices.values())
            elif action.dest == setting and action.option_strings:
                return max(action.option_strings, key=len)
    return setting


def _configure_logging(args: argparse.Namespace) -> None:
    from ._logging import configure_logging

    configure_logging(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)


def _report_native_crashes() -> None:
    """A crash in native code (TensorFlow, a database driver) prints the Python line it came from."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return  # stderr is not a file (captured, as under pytest): there is nowhere to write
    faulthandler.enable()


@contextlib.contextmanager
def storage_outages_as_errors() -> Iterator[None]:
    """A storage given up on outside the trials (opening the study, counting it afterwards) ends the command as
    inside them: with StorageOutage."""
    try:
        yield
    except (LepidoptError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:
        from .study import outage_error, unreachable_in

        gone = unreachable_in(error)
        if gone is None:
            raise
        raise outage_error(gone) from None


def main(argv: Sequence[str] | None = None) -> int:
    _report_native_crashes()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(args)
    flag = functools.partial(_flag, parser)
    try:
        with naming_flags(flag), storage_outages_as_errors():
            return COMMANDS[args.command](args)
    except LepidoptError as exc:
        prefix = f"lepidopt {args.command}: error" if isinstance(exc, SettingError) else "error"
        print(f"{prefix}: {exc.for_command_line(flag)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (lepidopt status | head): nothing more to say
        sys.stdout = open(os.devnull, "w")
        return 0
