"""The gallery: labelled face embeddings that grow with every correction.

A face confirmed or corrected by a person goes in at once, so the next image of that character
benefits without retraining; a bot with no trained model at all names faces from the gallery alone.

Without a model's head (`use_head` not called), embeddings are compared by cosine similarity after
standardising them (with fixed statistics given to `use_statistics`, else running statistics of every
face observed). A label's score is its best similarity; scores become probabilities by a softmax in which
a virtual "someone else" competitor sits at `match_similarity`, so a face unlike everything in the gallery
gives the gallery little say; a copy of a taught face (cosine from `COPY_FULL` up) leaves nothing to the rest.

With a head (`use_head(head, labels, exemplars)`, what a recognizer with a model does), a correction is a
local update of the head, not a vote of its own. Corrections taught as plain nearest-neighbour votes made
the bot worse: in the backbone's features fan art of two characters by one artist is closer than two
pictures of one character, so a corrected name pulled other characters' faces to it.
- Each entry carries the push the head needed there: how far the taught name's log-probability was below
  the head's best other answer, plus `HEAD_MARGIN` (a name new to the head starts at `NEW_LABEL_PRIOR`
  against the head's total of 1). A correction the head already agreed with needs no push, so it changes
  nothing for other faces.
- A copy of the taught face (the same picture again, re-encoded, cropped or mirrored: raw-feature cosine
  from `COPY_FLOOR`, where its share starts, to `COPY_FULL`, where it is whole) gets the whole push plus
  `REACH_CAP`, so it is named as taught.
- Another face is reached by the correction nearest to it, and only when that correction is nearer than
  every face the model was trained on (`exemplars`, `recognizer.exemplars`). Both are compared in the
  head's discriminant space (`SoftmaxHead.directions`), where style and source count little. So a
  correction claims the faces for which it is the nearest labelled example the bot has: a picture drawn
  unlike anything in training, the way the corrected one was, and not the faces the training data already
  covers. There its name gets what it needs at that face to come first (`HEAD_MARGIN` ahead), at most
  `REACH_CAP` nats: a face the head is very sure of is not overturned by a correction made elsewhere.
  A model without exemplars (trained before they existed) lets corrections reach copies only.
- A label's push is the largest of its entries'. The head's probability of a label it knows is multiplied by
  exp(push); a new name scores `NEW_LABEL_PRIOR` * (exp(push) - 1) against the head's total of 1.

`probabilities` keeps one meaning in both modes: per label, the share the gallery claims against "the
rest" (the head, or "someone else"), odds r / (1 + sum of r); `combine` reads the odds back.

The constants were chosen with bench/corrections.py on the validation split of shared/data/faces (teach
2 crops of each of 8 characters, known to the head or taken out of it; the other crops must not change)
and checked on its test split and the scenes; the nearest-example rule has no constant of its own.
"""

from __future__ import annotations

import threading
from typing import Hashable, NamedTuple, Sequence

import numpy as np

from recognizer.exemplars import Exemplars
from recognizer.labels import label_key

# With a head: see the module's docstring.
HEAD_MARGIN = 0.5        # nats by which a taught face's own name beats the head's best other answer there
NEW_LABEL_PRIOR = 0.03   # where a name the head does not know starts, against the head's total of 1
REACH_CAP = 4.0          # nats: the most a correction pushes a face that is not a copy of the taught one
COPY_FLOOR = 0.6         # raw-feature cosine from which a face starts to count as a copy of a taught one ...
COPY_FULL = 0.9          # ... and from which it is one (a re-encoded copy; a mirrored one is ~0.75)
COPY_BONUS = 60.0        # nats, without a head: what a copy adds (raw cosine from COPY_FULL to 1)
MAX_PUSH = 600.0         # nats; beyond, odds would overflow
SURE_REST = 1e-9         # `combine`: when the gallery leaves less than this to the rest, its word is final


class Gallery:
    def __init__(self, match_similarity: float = 0.5, temperature: float = 0.05, min_observed: int = 16) -> None:
        self.match_similarity = match_similarity
        self.min_observed = min_observed
        self.temperature = temperature
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[np.ndarray, str]] = {}
        self._fixed_stats: tuple[np.ndarray, np.ndarray] | None = None
        self._head = None
        self._head_columns: dict[str, int] = {}   # label key -> the head's column
        self._exemplars: Exemplars | None = None
        # running mean and sum of squared deviations (Welford) of observed embeddings
        self._count = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self._matrix: np.ndarray | None = None  # normalised entries, rebuilt lazily
        self._matrix_labels: list[str] = []
        self._pushes: np.ndarray | None = None     # with a head: each entry's push (nats)
        self._projected: np.ndarray | None = None  # with a head: entries in its discriminant space

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def has_statistics(self) -> bool:
        """Whether embeddings can be standardised (fixed statistics, or enough observed)."""
        return self._fixed_stats is not None or self._count >= self.min_observed

    @property
    def labels(self) -> list[str]:
        with self._lock:
            return sorted({label for _, label in self._entries.values()})

    @property
    def uses_head(self) -> bool:
        """Whether `use_head` gave this gallery a trained head to work with."""
        return self._head is not None

    def use_statistics(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Standardise with fixed feature statistics (a trained head's) instead of running ones."""
        with self._lock:
            self._fixed_stats = (np.asarray(mean, np.float32), np.asarray(scale, np.float32))
            self._matrix = None

    def use_head(self, head, labels: Sequence[str],  # noqa: ANN001 - any head with logits() and directions()
                 exemplars: Exemplars | None = None) -> None:
        """Work with a trained head (`labels`: its classes' names, in order; `exemplars`: the faces it was
        trained on): compare faces in its discriminant space and act as local updates of it (see the
        module's docstring). Without exemplars a correction reaches copies of the taught face only."""
        if len(labels) != head.classes:
            raise ValueError(f"the head has {head.classes} classes but {len(labels)} labels were given")
        if exemplars is not None and exemplars.classes != head.classes:
            raise ValueError(f"the head has {head.classes} classes but the exemplars {exemplars.classes}")
        with self._lock:
            self._head = head
            self._exemplars = exemplars
            self._head_columns = {label_key(label): i for i, label in enumerate(labels)}
            self._fixed_stats = (np.asarray(head.mean, np.float32), np.asarray(head.scale, np.float32))
            self._matrix = None

    def observe(self, embeddings: np.ndarray) -> None:
        """Update the running statistics with faces seen (labelled or not)."""
        embeddings = np.asarray(embeddings, np.float64)
        if embeddings.size == 0:
            return
        with self._lock:
            for row in embeddings:
                self._count += 1
                if self._mean is None:
                    self._mean, self._m2 = row.copy(), np.zeros_like(row)
                    continue
                delta = row - self._mean
                self._mean += delta / self._count
                self._m2 += delta * (row - self._mean)
            if self._fixed_stats is None:
                self._matrix = None

    def set(self, key: Hashable, embedding: np.ndarray, label: str | None) -> None:
        """Put a labelled face in the gallery (label None takes it out)."""
        with self._lock:
            if label is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = (np.asarray(embedding, np.float32).ravel(), label)
            self._matrix = None

    def label(self, key: Hashable) -> str | None:
        """The label a face was taught (None: not in the gallery)."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry[1]

    def remove(self, key: Hashable) -> None:
        self.set(key, np.zeros(0), None)

    def _discriminant(self, embeddings: np.ndarray) -> np.ndarray:
        return self._head.directions(np.asarray(embeddings, np.float32))

    def _normalise(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = np.asarray(embeddings, np.float32)
        if self._fixed_stats is not None:
            mean, scale = self._fixed_stats
            embeddings = (embeddings - mean) / scale
        elif self._count >= self.min_observed and self._mean.shape[0] == embeddings.shape[-1]:
            std = np.sqrt(self._m2 / (self._count - 1)) + 1e-6
            embeddings = (embeddings - self._mean.astype(np.float32)) / std.astype(np.float32)
        norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
        return embeddings / np.maximum(norms, 1e-12)

    def _rebuild(self) -> None:
        keys = list(self._entries)
        raw = np.stack([self._entries[k][0] for k in keys])
        self._matrix = self._normalise(raw)
        self._matrix_labels = [self._entries[k][1] for k in keys]
        self._pushes = self._projected = None
        if self._head is not None:
            self._projected = self._discriminant(raw)
            log_p = _log_softmax(self._head.logits(raw).astype(np.float64))
            pushes = np.empty(len(keys))
            for i, label in enumerate(self._matrix_labels):
                column = self._head_columns.get(label_key(label))
                if column is None:  # a new name: from its prior to above the head's best, plus the margin
                    pushes[i] = log_p[i].max() - np.log(NEW_LABEL_PRIOR) + HEAD_MARGIN
                else:  # a name the head knows: from its log-probability to above the best other, plus the margin
                    others = np.delete(log_p[i], column)
                    pushes[i] = others.max() - log_p[i, column] + HEAD_MARGIN if len(others) else 0.0
            self._pushes = np.maximum(pushes, 0.0)

    def _view(self, embeddings: np.ndarray) -> "_View | None":
        """The entries and the queried faces, consistent under the lock (None: no entries)."""
        with self._lock:
            if not self._entries:
                return None
            if self._matrix is None:
                self._rebuild()
            if self._head is None:
                return _View(self._matrix, self._matrix_labels, self._normalise(embeddings))
            embeddings = np.asarray(embeddings, np.float32)
            return _View(self._matrix, self._matrix_labels, self._normalise(embeddings), self._pushes,
                         self._head_columns, self._projected, self._discriminant(embeddings),
                         _log_softmax(self._head.logits(embeddings).astype(np.float64)), self._exemplars)

    def similarities(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Labels and, per embedding, each label's best cosine similarity: (N, L)."""
        view = self._view(embeddings)
        if view is None:
            return [], np.zeros((len(embeddings), 0), np.float32)
        labels, columns = _label_columns(view.labels)
        if view.projected is not None:
            return labels, _best_per_label(view.projected_queries @ view.projected.T, columns, len(labels), -1.0)
        return labels, _best_per_label(view.queries @ view.matrix.T, columns, len(labels), -1.0)

    def probabilities(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Labels and (N, L) probabilities; each row sums to the gallery's confidence (< 1)."""
        view = self._view(embeddings)
        if view is None:
            return [], np.zeros((len(embeddings), 0), np.float32)
        labels, columns = _label_columns(view.labels)
        similarity = view.queries @ view.matrix.T
        head_columns = view.head_columns
        if head_columns is not None:
            copy = np.clip((similarity - COPY_FLOOR) / (COPY_FULL - COPY_FLOOR), 0.0, 1.0)
            # a correction the head agreed with pushes nothing
            whole = np.where(view.pushes > 0, view.pushes + REACH_CAP, 0.0)
            per_entry = copy * whole[None, :]
            if view.exemplars is not None:
                per_entry = np.maximum(per_entry, _nearest_example_pushes(
                    view.projected_queries @ view.projected.T,
                    view.exemplars.nearest_similarity(view.projected_queries), view.log_p,
                    [head_columns.get(label_key(label)) for label in view.labels]))
            push = np.minimum(_best_per_label(per_entry, columns, len(labels), 0.0).astype(np.float64), MAX_PUSH)
            known = np.array([label_key(label) in head_columns for label in labels], bool)
            # odds against the rest: a known name's extra odds over the head's, a new name's own
            odds = np.where(known[None, :], np.expm1(push), NEW_LABEL_PRIOR * np.expm1(push))
        else:
            best = _best_per_label(similarity, columns, len(labels), -1.0)
            logits = (best.astype(np.float64) - self.match_similarity) / self.temperature
            # a copy of a taught face (re-encoded, resized) leaves nothing to the rest, even against a sure head
            logits += COPY_BONUS * np.clip((best - COPY_FULL) / (1.0 - COPY_FULL), 0.0, 1.0)
            odds = np.exp(np.minimum(logits, 600.0))
        # float64: `combine` reads the odds back from these, and a copy of a taught face can have huge odds
        return labels, odds / (1.0 + odds.sum(axis=1, keepdims=True))


class _View(NamedTuple):
    matrix: np.ndarray                        # entries, standardised and normalised
    labels: list[str]                         # each entry's label
    queries: np.ndarray                       # the faces asked about, the same way
    pushes: np.ndarray | None = None          # with a head: each entry's push (nats)
    head_columns: dict[str, int] | None = None
    projected: np.ndarray | None = None       # with a head: entries in its discriminant space
    projected_queries: np.ndarray | None = None
    log_p: np.ndarray | None = None           # with a head: its log-probabilities for the faces
    exemplars: Exemplars | None = None


def _nearest_example_pushes(to_entries: np.ndarray, to_exemplars: np.ndarray, log_p: np.ndarray,
                            entry_columns: Sequence[int | None]) -> np.ndarray:
    """(N, entries) pushes: each face's nearest correction, where it is nearer than every training face,
    gets what its name needs at that face to come first by `HEAD_MARGIN`, at most `REACH_CAP` nats.

    to_entries: discriminant-space cosine of each face to each correction; to_exemplars: each face's cosine
    to its nearest training face; log_p: the head's log-probabilities; entry_columns: each correction's head
    column (None for a name new to the head)."""
    pushes = np.zeros(to_entries.shape, np.float64)
    if not to_entries.shape[1]:
        return pushes
    nearest = to_entries.argmax(axis=1)
    for face, entry in enumerate(nearest):
        if to_entries[face, entry] <= to_exemplars[face]:
            continue
        column = entry_columns[entry]
        best = log_p[face].max()
        if column is None:
            need = best - np.log(NEW_LABEL_PRIOR) + HEAD_MARGIN
        else:
            others = np.delete(log_p[face], column)
            need = (others.max() - log_p[face, column] + HEAD_MARGIN) if len(others) else 0.0
        pushes[face, entry] = min(max(need, 0.0), REACH_CAP)
    return pushes


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _label_columns(entry_labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    labels = sorted(set(entry_labels))
    index = {label: i for i, label in enumerate(labels)}
    return labels, np.array([index[label] for label in entry_labels], np.int64)


def _best_per_label(per_entry: np.ndarray, columns: np.ndarray, count: int, empty: float) -> np.ndarray:
    """(N, entries) -> (N, labels): each label's largest value over its entries."""
    best = np.full((len(per_entry), count), empty, per_entry.dtype)
    for column in range(count):
        mine = columns == column
        if mine.any():
            best[:, column] = np.maximum(per_entry[:, mine].max(axis=1), empty)
    return best.astype(np.float32)


def combine(head_labels: Sequence[str], head_probabilities: np.ndarray | None,
            gallery_labels: Sequence[str], gallery_probabilities: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Mix the head's and the gallery's beliefs; each row sums to 1 when there is a head, else to the
    gallery's mass (its probabilities as they are).

    The gallery's probabilities are read back as odds against the rest, r = p / (1 - sum of p). A label the
    head knows has its probability multiplied by 1 + r (evidence for it never takes anything from it); a
    label new to the head is given r against the head's total of 1. Labels are merged by `label_key`
    ("hatsune_miku" and "Hatsune Miku" are one character; the head's spelling wins).
    """
    labels = list(head_labels)
    position = {label_key(label): i for i, label in enumerate(labels)}
    columns = []
    for label in gallery_labels:
        key = label_key(label)
        if key not in position:
            position[key] = len(labels)
            labels.append(label)
        columns.append(position[key])
    rows = len(gallery_probabilities) if head_probabilities is None else len(head_probabilities)
    if head_probabilities is None or not len(head_labels):
        mixed = np.zeros((rows, len(labels)), np.float32)
        for column, target in enumerate(columns):
            mixed[:, target] += gallery_probabilities[:, column]
        return labels, mixed
    gallery = np.asarray(gallery_probabilities, np.float64).reshape(rows, len(gallery_labels))
    rest = 1.0 - gallery.sum(axis=1, keepdims=True)
    sure = rest[:, 0] < SURE_REST  # the gallery all but certain (a copy of a taught face): its word is final
    odds = gallery / np.maximum(rest, SURE_REST)
    known_factor = np.ones((rows, len(head_labels)))
    score = np.zeros((rows, len(labels)))
    for column, target in enumerate(columns):
        if target < len(head_labels):
            known_factor[:, target] += odds[:, column]
        else:
            score[:, target] += odds[:, column]
    score[:, : len(head_labels)] = np.asarray(head_probabilities, np.float64) * known_factor
    if sure.any():
        score[sure] = 0.0
        for column, target in enumerate(columns):
            score[sure, target] += gallery[sure, column]
    return labels, (score / score.sum(axis=1, keepdims=True)).astype(np.float32)
