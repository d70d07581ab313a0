"""Building the running bot from settings: database, recognizer, worker pool and core."""

from __future__ import annotations

import logging

import numpy as np

from bot.config import Settings
from bot.core import Core
from bot.privacy import Hasher, load_secret
from bot.storage import migrate
from bot.storage.db import Database
from bot.worker import WorkerPool
from recognizer import DecodeLimits, Recognizer, RecognizerSettings, read_model
from recognizer.backbone import COLOUR_BINS, Backbone, BackboneSpec
from recognizer.model import ModelFiles
from recognizer.lite_runtime import interpreter_threads

log = logging.getLogger(__name__)


def recognizer_settings(settings: Settings) -> RecognizerSettings:
    """How the bot reads images and finds faces, from its settings."""
    return RecognizerSettings(
        limits=DecodeLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels),
        detector=settings.detector,
        scan=settings.detector_scan,
        detect_max_side=settings.detect_max_side or None,
        cascade_path=str(settings.cascade_path) if settings.cascade_path else None,
        backbone_threads=interpreter_threads(settings.workers))


def build_recognizer(settings: Settings) -> Recognizer:
    """The model from settings; without one, a backbone alone, whose gallery learns from corrections."""
    model = None
    if settings.model_hub is not None:  # fetched, or found in the Hub's cache, and checked (recognizer.hub)
        from recognizer.hub.fetch import open_model

        model = open_model(settings.model_hub)
    elif settings.model_dir is not None:
        model = read_model(settings.model_dir)
    if model is not None:
        backbone = served_backbone(model, settings) if settings.backbone_server else None
        return Recognizer(model, settings=recognizer_settings(settings), backbone=backbone,
                          backbone_weights=settings.backbone_weights)
    spec = BackboneSpec(weights="file" if settings.backbone_weights else "imagenet",
                        input_size=settings.backbone_input_size, feature_layers=settings.backbone_layers,
                        preprocessing=settings.backbone_preprocessing)
    return Recognizer(settings=recognizer_settings(settings), backbone=Backbone(spec, settings.backbone_weights))


def served_backbone(model: ModelFiles, settings: Settings) -> Backbone:
    """The model's backbone run by the model server in ANIFACE_BACKBONE_SERVER (refused if it serves another)."""
    from recognizer.remote_backbone import RemoteForward, backbone_sha256

    spec = model.manifest.backbone
    # what the head was fitted on, less the colour histogram the replica adds itself
    dimension = int(model.head.mean.shape[0]) - (int(np.prod(COLOUR_BINS)) if spec.colour_histogram else 0)
    network = RemoteForward(settings.backbone_server, backbone_sha256(model, settings.backbone_weights), dimension,
                            spec.input_size, spec.preprocessing, timeout=settings.backbone_server_timeout)
    return Backbone(spec, network=network)


def build_core(settings: Settings, recognizer: Recognizer | None = None) -> Core:
    """The running bot's object graph: the one place where database, recognizer, hasher and pool meet."""
    database = Database(settings.database_url, upgrade=False)
    migrate.upgrade(database.engine)  # a fresh or older database gets the current schema
    recognizer = recognizer or build_recognizer(settings)
    return Core(database, recognizer, Hasher(load_secret(settings.data_dir, settings.secret)),
                admins={platform: set(ids) for platform, ids in settings.admins.items()},
                pool=WorkerPool(settings.workers, settings.queue_size, settings.release_memory),
                catch_up_interval=settings.catch_up_interval, album_takeover=settings.album_takeover)
