"""Request logging: a sampled share of requests and their answers, as TF Serving's ``PredictionLog`` records.

Configured the way TF Serving configures it, per model, in the model config::

    config {
      name: "flights_delay" base_path: "/models/flights_delay"
      logging_config {
        log_collector_config { type: "tfrecord" filename_prefix: "/var/log/runway/flights_delay" }
        sampling_config { sampling_rate: 0.05 }
      }
    }

Each successful Predict, Classify or Regress (REST or gRPC) of a model with a ``logging_config`` is sampled with
``sampling_rate`` (``RequestLogger::Log`` in request_logger.cc: 1.0 logs all, 0.0 none). A sampled request becomes a
``PredictionLog`` whose ``log_metadata`` carries the model spec that answered (name, version, signature), the
sampling config and the tags, appended to ``<filename_prefix>-<UTC time>-<host>-<pid>-<n>.tfrecord``. A file is
written as ``....tfrecord.partial`` and renamed to its final name when it is closed (``max_file_bytes`` reached,
``max_file_seconds`` after it was opened, a reload that drops its prefix, or the server stopping), so a reader that
takes ``*.tfrecord`` only ever sees whole files (``request_log_reader``).

Logging never slows or fails a request: the request thread only samples and puts a record's ingredients on a
bounded queue; one writer thread builds, serializes and writes them. When the queue is full the record is dropped.
Logged, dropped and failed records and the bytes written are counted per model version (``Metrics``).

TF Serving's open-source ``tensorflow_model_server`` registers no log collector: a config with a
``logging_config`` is refused there ("No request-logger-creator provided", tensorflow/serving#408, #1846). This
server offers one collector, type ``tfrecord`` (the empty type means the same).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import NamedTuple

import tensorflow as tf
from google.protobuf.message import Message
from tensorflow_serving.config import logging_config_pb2, model_server_config_pb2

from pipeline_components.durable import fsync_dir
from pipeline_components.serving import log_records, status
from pipeline_components.serving.metrics import Metrics
from pipeline_components.serving.request_log_reader import FILE_SUFFIX  # one name for both sides
from pipeline_components.serving.servable import Servable

log = logging.getLogger(__name__)

COLLECTOR_TYPES = ("tfrecord", "")  # "": what a config written for TF Serving without a registered type says
PARTIAL_SUFFIX = ".partial"  # an open file: FILE_SUFFIX + PARTIAL_SUFFIX, renamed when closed
SAVED_MODEL_TAGS = ("serve",)
# The oneof field of PredictionLog each API fills.
LOG_FIELDS = {"predict": "predict_log", "classify": "classify_log", "regress": "regress_log"}
# How long the writer, woken by a record, lets more records gather before it writes them; at most this much later
# on disk than without the wait (files are renamed for readers seconds later anyway).
BATCH_WAIT_S = 0.02

# Gives (request, response): messages, or their serialized bytes (a REST Predict's, encoded by log_records).
Build = Callable[[], tuple[Message | bytes, Message | bytes]]


@dataclass(frozen=True)
class RequestLogOptions:
    """How records are queued and files rotated (runway's ``--runway_request_log_*`` flags).

    Attributes:
        queue_size: records waiting for the writer at most; one more is dropped (and counted).
        max_file_bytes: a file is closed once it holds this many bytes.
        max_file_seconds: a file is closed this long after it was opened, so readers get recent traffic.
    """

    queue_size: int = 1024
    max_file_bytes: int = 64 * 1024 * 1024
    max_file_seconds: float = 60.0


class _Record(NamedTuple):  # made on the request thread: a tuple is the cheapest to make
    prefix: str
    api: str
    model_name: str
    version: int
    signature_name: str
    sampling: logging_config_pb2.SamplingConfig
    timestamp_secs: int
    build: Build


class _OpenFile:
    """One file being written: ``<final>.partial`` until ``close`` renames it."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.partial = final.with_name(final.name + PARTIAL_SUFFIX)
        self.opened = time.monotonic()
        self.size = 0
        self._writer = tf.io.TFRecordWriter(str(self.partial))

    def write(self, record: bytes) -> int:
        self._writer.write(record)
        written = len(record) + 16  # TFRecord framing: length (8), its CRC (4), the data's CRC (4)
        self.size += written
        return written

    def close(self) -> None:
        self._writer.close()
        fd = os.open(self.partial, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data reaches the disk before the name that says the file is whole
        finally:
            os.close(fd)
        os.rename(self.partial, self.final)
        fsync_dir(self.final.parent)


def logging_configs(config: model_server_config_pb2.ModelServerConfig) -> dict[str, logging_config_pb2.LoggingConfig]:
    """Each model's ``logging_config``, checked, for the models that have one.

    Raises:
        ServingError: INVALID_ARGUMENT for a collector type this server does not offer, a missing
            ``filename_prefix`` or a sampling rate outside [0, 1].
    """
    configs = {}
    for model in config.model_config_list.config:
        if not model.HasField("logging_config"):
            continue
        logging_config = model.logging_config
        collector = logging_config.log_collector_config
        if collector.type not in COLLECTOR_TYPES:
            raise status.invalid_argument(
                f"Cannot find LogCollector::Factory for type: {collector.type} (model {model.name}); "
                'runway-model-server writes TFRecord files: use type "tfrecord"'
            )
        if not collector.filename_prefix:
            raise status.invalid_argument(
                f"logging_config of model {model.name} has no log_collector_config.filename_prefix: say where the "
                "request log files go (for example /var/log/runway/<model>)"
            )
        rate = logging_config.sampling_config.sampling_rate
        if not 0.0 <= rate <= 1.0:
            raise status.invalid_argument(
                f"sampling_rate of model {model.name} must be between 0 and 1 (the share of requests logged), "
                f"not {rate}"
            )
        configs[model.name] = logging_config
    return configs


class RequestLogger:
    """Samples requests per model, queues them, and writes them from one thread.

    Args:
        metrics: where logged, dropped and failed records and bytes are counted.
        options: queue size and file rotation.
    """

    def __init__(self, *, metrics: Metrics, options: RequestLogOptions) -> None:
        self._metrics = metrics
        self._options = options
        # model name -> (its logging config, its absolute filename prefix)
        self._configs: dict[str, tuple[logging_config_pb2.LoggingConfig, str]] = {}
        # The queue: records (at most options.queue_size) and markers for the writer. A deque and a lock rather than
        # a queue.Queue, so that a record does not wake the writer unless it is the first one waiting.
        self._pending: deque[_Record | _Marker] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()  # set when the queue goes from empty to not empty
        self._files: dict[str, _OpenFile] = {}  # by filename_prefix; touched by the writer thread only
        self._names = count(1)
        self._host = socket.gethostname().replace("-", "_").replace("/", "_") or "host"
        self._stopped = threading.Event()
        self._writer: threading.Thread | None = None

    # --- configuration (HandleReloadConfigRequest, the config file) ----------------------------------------------

    def check(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Refuse a config whose logging cannot work, before anything of it is applied; create the log folders.

        Raises:
            ServingError: INVALID_ARGUMENT (see ``logging_configs``), FAILED_PRECONDITION when a log folder cannot
                be created.
        """
        for name, logging_config in logging_configs(config).items():
            folder = Path(logging_config.log_collector_config.filename_prefix).absolute().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise status.failed_precondition(
                    f"cannot create the request log folder {folder} of model {name}: {error}"
                ) from None

    def apply(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Log as ``config`` says from now on (a checked config); files of prefixes no longer used are closed."""
        configs = {
            name: (logging_config, str(Path(logging_config.log_collector_config.filename_prefix).absolute()))
            for name, logging_config in logging_configs(config).items()
        }
        self._configs = configs  # one reference swap: request threads read it without a lock
        if configs and self._writer is None:
            self._writer = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
            self._writer.start()
        if self._writer is not None:
            self._send(_Marker("retire"))  # never held up by a full queue (a reload holds the model manager)

    # --- request threads -----------------------------------------------------------------------------------------

    def log(self, *, api: str, servable: Servable, signature_name: str, build: Build) -> None:
        """Maybe log one answered request; returns at once.

        Args:
            api: ``predict``, ``classify`` or ``regress``.
            servable: the version that answered.
            signature_name: the signature that ran.
            build: gives (request, response) as TF Serving's protos; called on the writer thread, so the request
                thread never pays for building or serializing them.
        """
        found = self._configs.get(servable.name)
        if found is None or random.random() >= found[0].sampling_config.sampling_rate:
            return
        logging_config, prefix = found
        record = _Record(
            prefix=prefix,
            api=api,
            model_name=servable.name,
            version=servable.version,
            signature_name=signature_name,
            sampling=logging_config.sampling_config,
            timestamp_secs=int(time.time()),
            build=build,
        )
        with self._lock:
            was_empty = not self._pending
            full = len(self._pending) >= self._options.queue_size
            if not full:
                self._pending.append(record)
        if full:
            self._metrics.record_request_log(model_name=servable.name, version=servable.version, outcome="dropped")
        elif was_empty:  # only the first record of a batch wakes the writer: no wake-up (and GIL hand-off) per record
            self._wake.set()

    # --- writer thread -------------------------------------------------------------------------------------------

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Write what is queued and close every open file, so a reader sees it all; False if not done in time."""
        if self._writer is None:
            return True
        marker = _Marker("close")
        self._send(marker)
        return marker.done.wait(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, close the files and end the writer thread (waits at most ``timeout_s``)."""
        self._stopped.set()
        if self._writer is not None:
            self._send(_Marker("close"))
            self._writer.join(timeout_s)

    def _send(self, marker: _Marker) -> None:
        """Queue a marker behind the records queued so far (a marker never counts against the queue's size)."""
        with self._lock:
            self._pending.append(marker)
        self._wake.set()

    def _next(self) -> _Record | _Marker | None:
        with self._lock:
            return self._pending.popleft() if self._pending else None

    def _run(self) -> None:
        while True:
            if self._wake.wait(self._wait_s()):
                self._wake.clear()
                # Let the records of the next few milliseconds join the one that woke the writer: under load it
                # wakes (and takes the GIL from the request threads) once per batch, not once per request.
                time.sleep(BATCH_WAIT_S)
            while (item := self._next()) is not None:  # one at a time: the queue still bounds what waits
                if isinstance(item, _Record):
                    self._write_counted(item)
                else:
                    self._handle(item)
            self._close_old_files()
            if self._stopped.is_set():
                with self._lock:
                    if self._pending:
                        continue
                self._close_files(lambda _prefix: True)
                return

    def _wait_s(self) -> float:
        if not self._files:
            return 1.0
        oldest = min(f.opened for f in self._files.values())
        return max(0.01, min(1.0, oldest + self._options.max_file_seconds - time.monotonic()))

    def _handle(self, marker: _Marker) -> None:
        if marker.kind == "close":
            self._close_files(lambda _prefix: True)
        else:
            wanted = {prefix for _, prefix in self._configs.values()}
            self._close_files(lambda prefix: prefix not in wanted)
        marker.done.set()

    def _write_counted(self, record: _Record) -> None:
        try:
            written = self._write(record)
        except Exception:  # a failing disk or a bad record must never end the writer
            log.exception("writing a request log record of %s version %d failed", record.model_name, record.version)
            self._metrics.record_request_log(model_name=record.model_name, version=record.version, outcome="failed")
            return
        self._metrics.record_request_log(
            model_name=record.model_name, version=record.version, outcome="logged", written=written
        )

    def _write(self, record: _Record) -> int:
        request, response = record.build()
        # Joined from serialized parts (log_records): no copy of the request into a PredictionLog message.
        data = log_records.prediction_log(
            metadata=log_records.metadata_without_time(
                record.model_name,
                record.version,
                record.signature_name,
                record.sampling.SerializeToString(),
                SAVED_MODEL_TAGS,
            ),
            timestamp_secs=record.timestamp_secs,
            log_field=LOG_FIELDS[record.api],
            request=log_records.serialized(request),
            response=log_records.serialized(response),
        )
        open_file = self._files.get(record.prefix)
        if open_file is None:
            open_file = self._files[record.prefix] = _OpenFile(self._new_name(record.prefix))
        written = open_file.write(data)
        if open_file.size >= self._options.max_file_bytes:
            self._close_files(lambda prefix: prefix == record.prefix)
        return written

    def _new_name(self, prefix: str) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return Path(f"{prefix}-{stamp}-{self._host}-{os.getpid()}-{next(self._names):06d}{FILE_SUFFIX}")

    def _close_old_files(self) -> None:
        deadline = time.monotonic() - self._options.max_file_seconds
        self._close_files(lambda prefix: self._files[prefix].opened <= deadline)

    def _close_files(self, which: Callable[[str], bool]) -> None:
        for prefix in [p for p in self._files if which(p)]:
            open_file = self._files.pop(prefix)
            try:
                open_file.close()
            except OSError as error:
                log.error("closing request log file %s failed: %s", open_file.partial, error)


class _Marker:
    """A message to the writer thread: ``close`` every file, or ``retire`` those of prefixes no longer used."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.done = threading.Event()
