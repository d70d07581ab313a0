"""The dataset tools: they build, train and measure what the recognizer loads. Serving needs none of them.

- `harvest`: face crops from videos and folders, near-duplicates dropped, resumable (`aniface harvest`).
- `prelabel`: sorts harvested crops into folders by a model's best guess (`aniface prelabel`).
- `dataset`: reads the training folders and zip files (one folder per character).
- `feature_cache`: backbone features of every crop, computed once and kept on disk.
- `recut`: cuts training crops again the way serving cuts faces.
- `train`: fits the head on those features and writes a model folder (`aniface train`).
- `evaluate` and `scenes`: measure a model on held-out crops and on whole pictures (`aniface evaluate`).

Import from the modules themselves, e.g. `from recognizer.training.train import TrainConfig, train`.
"""
