"""What the bot counts for its operators, in Prometheus' terms (`prometheus_client`).

The core feeds one `Metrics` (bot/core.py): pictures by platform and outcome, faces, corrections,
errors, the time of each pipeline stage and of a whole picture; the worker pool, the gallery and the
model are read when scraped. Adapters only serve the text (`exposition()`): the web server at
/metrics, or a port of its own when the web page is off (adapters/metrics).

Every label value comes from a small fixed set: a platform, an outcome, an exception's class, an
`AckReason`. Never a person, a chat or a character name: each new value is a new time series kept
for ever, and a name in a label is a name in the monitoring system.

Each process has its own registry (not prometheus_client's global one), so a test with several cores
counts each apart, and each replica exposes its own figures: Prometheus adds them up.
"""

from __future__ import annotations

import logging
import re
from typing import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

#: the stages of `Recognizer.identify` as the core times them (`recognizer` reports detect/embed/classify)
STAGES = ("decode", "detect", "embed", "classify", "annotate")
#: how a picture ended; "ignored": the chat answers only when asked, and nobody asked
OUTCOMES = ("answered", "no_face", "refused", "busy", "unavailable", "ignored")
#: how corrections arrive (`Correction.via`); anything else is counted as "other"
CORRECTION_KINDS = ("command", "reaction", "button", "reply", "web")
#: the platforms of the shipped adapters; a third-party adapter's own is counted as "other"
PLATFORMS = ("telegram", "discord", "web")

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REPLY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)


def _bounded(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else "other"


def reason_of(error: BaseException) -> str:
    """A refusal's reason as a label: its exception's class in snake case (`TooManyPixels` ->
    "too_many_pixels"), a set as small as the classes the recognizer and the core raise."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


class Metrics:
    """The bot's metrics in a registry of their own. Thread-safe (prometheus_client's are)."""

    def __init__(self) -> None:
        disable_created_metrics()  # the "_created" series only double what a scrape costs; process-wide
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._pictures = Counter("aniface_pictures", "Pictures the bot was given, by how each ended",
                                 ("platform", "outcome"), registry=registry)
        self._refused = Counter("aniface_pictures_refused", "Pictures refused, by why (the refusal's class)",
                                ("platform", "reason"), registry=registry)
        self._faces = Counter("aniface_faces", "Faces in the pictures answered", ("platform",), registry=registry)
        self._corrections = Counter("aniface_corrections",
                                    "Corrections, by how they came and what the bot made of them (AckReason)",
                                    ("platform", "kind", "result"), registry=registry)
        self._errors = Counter("aniface_errors", "Errors logged, by the part of the program that logged them",
                               ("component",), registry=registry)
        self._stages = Histogram("aniface_stage_seconds", "Seconds spent in each stage of the recognizer",
                                 ("stage",), buckets=STAGE_BUCKETS, registry=registry)
        self._reply = Histogram("aniface_picture_to_reply_seconds",
                                "Seconds from a picture reaching the core to its reply being ready (the "
                                "download, the queue, recognition and storage)",
                                ("platform", "outcome"), buckets=REPLY_BUCKETS, registry=registry)
        self._queue = Gauge("aniface_queue_depth", "Pictures waiting for a recognizer worker", registry=registry)
        self._busy = Gauge("aniface_busy_workers", "Recognizer workers at work", registry=registry)
        self._workers = Gauge("aniface_workers", "Recognizer workers in the pool", registry=registry)
        self._gallery = Gauge("aniface_gallery_size", "Labelled faces in the gallery", registry=registry)
        self._known = Gauge("aniface_known_characters", "Characters the bot can name", registry=registry)
        self._model = Info("aniface_model", "The model this process serves", registry=registry)
        self._model.info({"version": "none"})
        self._error_counter: _ErrorCounter | None = None

    # --- what the core reports -----------------------------------------------------------------

    def picture(self, platform: str, outcome: str, seconds: float | None = None, *, faces: int = 0,
                reason: str | None = None) -> None:
        """One picture ended with `outcome` (OUTCOMES) after `seconds` (None: no reply was made)."""
        platform, outcome = _bounded(platform, PLATFORMS), _bounded(outcome, OUTCOMES)
        self._pictures.labels(platform, outcome).inc()
        if faces:
            self._faces.labels(platform).inc(faces)
        if outcome == "refused":
            self._refused.labels(platform, reason or "other").inc()
        if seconds is not None:
            self._reply.labels(platform, outcome).observe(seconds)

    def stages(self, timings: Mapping[str, float]) -> None:
        """The recognizer's timings of one picture: "<stage>_s" -> seconds, for the STAGES it reached."""
        for stage in STAGES:
            seconds = timings.get(f"{stage}_s")
            if seconds is not None:
                self._stages.labels(stage).observe(seconds)

    def correction(self, platform: str, kind: str, result: str) -> None:
        """A correction came (`kind`: CORRECTION_KINDS) and was taken as `result` (an AckReason value)."""
        self._corrections.labels(_bounded(platform, PLATFORMS), _bounded(kind, CORRECTION_KINDS), result).inc()

    def error(self, component: str) -> None:
        self._errors.labels(component).inc()

    # --- what is read when scraped -------------------------------------------------------------

    def watch(self, *, in_flight: Callable[[], int], workers: int, gallery_size: Callable[[], int],
              known_characters: Callable[[], int], model_version: str | None) -> None:
        """The gauges, read at each scrape from the core's parts."""
        self._workers.set(workers)
        self._queue.set_function(lambda: max(0, in_flight() - workers))
        self._busy.set_function(lambda: min(in_flight(), workers))
        self._gallery.set_function(gallery_size)
        self._known.set_function(known_characters)
        self._model.info({"version": model_version or "none"})

    def count_logged_errors(self) -> None:
        """Count every record logged at ERROR or above (ours, the platforms' libraries'), by component."""
        if self._error_counter is None:
            self._error_counter = _ErrorCounter(self)
            logging.getLogger().addHandler(self._error_counter)

    def stop_counting_logged_errors(self) -> None:
        if self._error_counter is not None:
            logging.getLogger().removeHandler(self._error_counter)
            self._error_counter = None

    # --- what adapters serve -------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The text a scrape gets, and its Content-Type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ErrorCounter(logging.Handler):
    """A logging handler that only counts: an error is counted wherever it is logged, adapters included,
    without a call at each place. The component is the logger's package (at most two parts of its name:
    "adapters.telegram", "bot.core", "telegram.ext"), so the label's values are bounded by the code."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.ERROR)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        self.metrics.error(".".join(record.name.split(".")[:2]))
