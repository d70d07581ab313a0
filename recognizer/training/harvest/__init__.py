"""Harvesting face crops for a dataset: frames from videos, images from folders, faces cut out.

    from recognizer.training.harvest import HarvestSettings, harvest
    report = harvest(["episode01.mkv", "screenshots/"], "crops", HarvestSettings(every=5.0))

What it does, the seed's recipe without the manual steps:
- Videos (any container and codec FFmpeg reads, through PyAV; no ffmpeg binary) are sampled every
  `every` seconds of presentation time, so variable frame rates need no special care. Where the
  container allows, the reader seeks to the keyframe before the next sample instead of decoding
  every frame; it learns from the seeks it makes (a seek that lands behind where it already was
  means keyframes are far apart) and decodes straight on when that is cheaper. The display matrix
  (phone videos) and non-square pixels are honoured: frames are seen as a player shows them.
- Folders are walked (sorted, hidden entries skipped); images in them are read with `load_image`,
  videos in them are sampled like videos given directly.
- Every picture is shrunk to `max_side` (long side) before detection, as the seed's 960x540 frames
  were; faces are found with the detector (animeface-2009, likelihood 0.7 by default) and cut out of
  that picture with `margin` of the box on every side (animeface's own thorough scan by default: recall
  matters more than speed here).
- A crop whose perceptual hash (8x8 dHash by default) lies within `max_distance` bits of any crop
  kept before, in this run or an earlier one into the same folder, is a near-duplicate and dropped.
- Each crop is `<sha256 of its PNG>.png`; `manifest.csv` holds one row per crop: its file, the source
  (absolute path), the kind (video or image), the timestamp in seconds from the start of the video
  (empty for images), the face box in the source's own coordinates (a video frame as displayed, or
  the image as decoded) with that size, the detection score, and the hash.
- Resumable: `.harvest-state.jsonl` journals finished sources (path, size, modification time) and,
  for a video being read, the time of the next sample. A re-run skips finished sources and continues
  a video from its last checkpoint; a source whose size or date changed is read again. Crops and the
  state are written so that a crash at any moment leaves a consistent folder: crops are written to a
  temporary name and renamed, manifest rows and state lines are appended and flushed (a torn last
  line is dropped on the next run), and a crop already in the manifest is never written twice.
  A different `every` or `max_side` applies to sources not yet finished; use a new folder to redo all.

The package, one module a job:
- `video`: sampling a video's frames (`sample_video`);
- `dedupe`: perceptual hashes and the near-duplicate index;
- `journal`: the output folder (manifest, state journal, lock), safe against a crash at any moment;
- `harvester`: the run itself, source after source (`Harvester`, `harvest`, `expand_sources`).
"""

from recognizer.training.harvest.dedupe import NearDuplicateIndex, perceptual_hash
from recognizer.training.harvest.harvester import (HarvestReport, HarvestSettings, Harvester, Source, SourceReport,
                                                   expand_sources, harvest)
from recognizer.training.harvest.journal import (MANIFEST_FIELDS, MANIFEST_NAME, STATE_NAME, HarvestError,
                                                 read_manifest)
from recognizer.training.harvest.video import VIDEO_SUFFIXES, SampledFrame, SamplerStats, VideoError, sample_video

__all__ = [
    "HarvestError", "HarvestReport", "HarvestSettings", "Harvester", "MANIFEST_FIELDS", "MANIFEST_NAME",
    "NearDuplicateIndex", "SampledFrame", "SamplerStats", "Source", "SourceReport", "STATE_NAME", "VIDEO_SUFFIXES",
    "VideoError", "expand_sources", "harvest", "perceptual_hash", "read_manifest", "sample_video",
]
