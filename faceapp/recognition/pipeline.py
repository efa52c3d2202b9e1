"""The recognition pipeline: detect -> align -> embed -> match, for one frame at a time.

:class:`Recognizer` owns one detector, the embedder and a matcher built from the
gallery; it notices gallery changes (any process) through ``Gallery.revision()`` and
rebuilds the matcher, so enrolments show up without a restart. The matcher's per-person
thresholds come from the recognizer's :class:`~faceapp.recognition.decision.DecisionRule`
(a preset is a false-alarm target, calibrated for the gallery in use).

Large galleries: from ``index_min_templates`` templates (200k by default) a search index
(faiss PQ fast-scan, kept next to the gallery file) proposes candidates (:mod:`faceapp.recognition.indexed`;
the index is only given the difference after a change), and from :data:`BACKGROUND_FROM`
templates the matcher is rebuilt after a change on a background thread (reading and
calibrating a million templates takes about 30 s) while the previous one keeps naming
faces. Small galleries rebuild at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from faceapp.embedding.ensemble import make_embedder
from faceapp.embedding.flip import embed_faces
from faceapp.embedding.modelcard import EmbeddingCard, card_for_gallery
from faceapp.embedding.runtime import Embedder
from faceapp.errors import ConfigError, ModelError
from faceapp.recognition.ann import index_path
from faceapp.recognition.decision import DecisionRule, GalleryCalibration, OpenSetCalibration, calibrate_gallery
from faceapp.recognition.indexed import MIN_TEMPLATES, IndexKeeper, build_matcher
from faceapp.recognition.matching import Matcher
from faceapp.storage.gallery import Gallery, GalleryMatrix
from faceapp.types import AlignedFace, Detection, FaceResult, FrameResult, StageTimes
from faceapp.vision.alignment import align_face
from faceapp.vision.detection import Detector, DetectorConfig, YuNetDetector, yunet_path

if TYPE_CHECKING:
    from faceapp.recognition.live import Tracking

logger = logging.getLogger(__name__)

#: From this many templates on (or the index's threshold, if lower), the matcher is rebuilt on a
#: thread after a change: reading and calibrating 50k templates takes about 2 s, 1M about 30 s.
BACKGROUND_FROM = 50_000


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that chooses how the pipeline runs."""

    model_dir: str | Path | None = None
    device: str = "auto"
    backend: str = "auto"
    threshold: str | float | None = None  # preset name, number (a fixed threshold), or None for the card's default
    flip: bool = False  # test-time flip fusion (see faceapp.embedding.flip)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    index_min_templates: int = MIN_TEMPLATES  # from this gallery size on: search index, background rebuilds
    index_builds: bool = True  # may build a missing search index (a live view); one-off commands use a saved one only

    def validate(self) -> None:
        """Raise ConfigError (one line) for an option out of range."""
        from faceapp.accel.device import DEVICES
        from faceapp.embedding.runtime import BACKENDS

        if self.index_min_templates < 1:
            raise ConfigError(f"index_min_templates must be at least 1, not {self.index_min_templates}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        try:
            self.detector.validate()
        except ValueError as error:
            raise ConfigError(str(error)) from None


def build_detector(config: PipelineConfig | None = None) -> Detector:
    """The face detector ``config`` describes (one per thread: it keeps per-call state).
    ``detector.backend`` "auto": our TensorFlow port (LiteRT on the CPU, where it is about
    1.7-2x faster than OpenCV's DNN: ``faceapp bench`` measures both; TensorFlow on a
    GPU), else OpenCV's DNN when TensorFlow's runtime is missing."""
    config = config or PipelineConfig()
    config.validate()
    backend = config.detector.backend
    if backend == "opencv":
        return YuNetDetector(yunet_path(config.model_dir), config.detector)
    from faceapp.vision.tf_detector import TfYuNetDetector, tf_detector_available, weights_path

    if backend == "auto" and not tf_detector_available():
        logger.info("neither LiteRT nor TensorFlow can be imported: faces are detected by OpenCV's DNN")
        return YuNetDetector(yunet_path(config.model_dir), config.detector)
    return TfYuNetDetector(weights_path(config.model_dir), config.detector, device=config.device)


def on_one_gpu(detector: Detector, embedder: Embedder) -> bool:
    """Whether both networks run in TensorFlow on the same GPU (so a frame's work can stay there)."""
    choice = getattr(detector, "choice", None)
    return (choice is not None and choice.kind == "gpu" and embedder.choice.kind == "gpu"
            and choice.tf_device == embedder.choice.tf_device
            and getattr(detector, "keras_model", None) is not None and embedder.keras_model is not None)


def decision_rule(card: EmbeddingCard, value: DecisionRule | str | float | None) -> DecisionRule:
    """A preset name, a number (a fixed threshold; also as text) or None (the card's
    default preset) -> a DecisionRule. ModelError (one line) for anything else."""
    if isinstance(value, DecisionRule):
        return value
    if value is None:
        return DecisionRule(card.default_preset)
    if isinstance(value, str) and value.strip().lower() in card.threshold_presets:
        return DecisionRule(value.strip().lower())
    return DecisionRule(fixed=card.threshold(value))  # validates the number


class Recognizer:
    """Detects, aligns, embeds and names the faces of BGR frames.

    ``decision``: a :class:`DecisionRule`, a preset name, a number (a fixed threshold for
    everyone) or None (the model card's default preset)."""

    def __init__(
        self, card: EmbeddingCard, detector: Detector, embedder: Embedder,
        decision: DecisionRule | str | float | None = None, gallery: Gallery | None = None, flip: bool = False,
        index_min_templates: int = MIN_TEMPLATES, index_builds: bool = True,
    ):
        self.card = card
        self.flip = flip
        self.detector = detector
        self.embedder = embedder
        self.gallery = gallery
        try:
            self.calibration = OpenSetCalibration.from_card(card.open_set)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"model card {card.directory}: its open_set section is unreadable ({error})") from None
        self._decision = decision_rule(card, decision)
        self._lock = threading.Lock()
        # What the current matcher was built from: (gallery object, its revision, decision rule, index generation).
        self._built_from: tuple | None = None
        self._matcher = Matcher.empty(card.embedding_dim, 0.0)
        self._data: GalleryMatrix | None = None  # the matrix the current matcher was built from
        self._chosen: GalleryCalibration | None = None  # and its calibration
        self.indexes = IndexKeeper(index_min_templates, builds=index_builds)
        self.background_from = min(BACKGROUND_FROM, index_min_templates)
        self._refresh: threading.Thread | None = None  # a large gallery's rebuild in the background
        self._refresh_error: Exception | None = None
        #: On a GPU: detection, alignment and embedding as TensorFlow programs on the device,
        #: the frame uploaded once (see faceapp.recognition.frame_program); None elsewhere.
        self.frame_program = None
        if on_one_gpu(detector, embedder):
            from faceapp.recognition.frame_program import FrameProgram

            self.frame_program = FrameProgram(detector, embedder)

    @classmethod
    def create(cls, config: PipelineConfig | None = None, gallery: Gallery | None = None) -> Recognizer:
        """Load the models named by ``config`` (the shipped ones by default). The one
        builder of the pipeline: the CLI, the GUI, evaluation, bench and training use it."""
        config = config or PipelineConfig()
        detector = build_detector(config)
        card = card_for_gallery(config.model_dir, gallery)
        embedder = make_embedder(card, device=config.device, backend=config.backend)
        return cls(card, detector, embedder, decision_rule(card, config.threshold), gallery, flip=config.flip,
                   index_min_templates=config.index_min_templates, index_builds=config.index_builds)

    # -- decision rule and gallery -------------------------------------------------
    @property
    def decision(self) -> DecisionRule:
        return self._decision

    @decision.setter
    def decision(self, value: DecisionRule | str | float | None) -> None:
        rule = decision_rule(self.card, value)
        with self._lock:
            self._decision = rule  # matcher() rebuilds with the new rule

    @property
    def threshold(self) -> float:
        """The gallery-level threshold in use now (a preset's calibrated value for the
        current gallery, or the fixed one); people may have their own (see :meth:`calibrate`)."""
        return self.matcher().threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.decision = DecisionRule(fixed=self.card.threshold(value))

    @property
    def last_threshold(self) -> float | None:
        """The gallery-level threshold of the matcher built last for the current rule
        (None before the first, or when the rule changed since), without looking at the
        gallery: for display on the GUI thread."""
        built, matcher = self._built_from, self._matcher
        return None if built is None or built[2] != self._decision else matcher.threshold

    @property
    def last_matcher(self) -> Matcher:
        """The matcher built last (never rebuilt here, so cheap on any thread)."""
        return self._matcher

    @property
    def verification_threshold(self) -> float:
        """The threshold for comparing two faces (1:1, no gallery): the card's value for
        the preset (calibrated on LFW pairs), or the fixed one."""
        rule = self._decision
        return float(rule.fixed) if rule.fixed is not None else self.card.threshold(rule.preset)

    def calibrate(self, data: GalleryMatrix | None, rule: DecisionRule | str | float | None = None) -> GalleryCalibration:
        """The decision ``rule`` (default: :attr:`decision`) gives for a gallery matrix
        (None: an empty gallery)."""
        if data is None or not len(data.embeddings):
            data = GalleryMatrix(np.zeros((0, self.card.embedding_dim), np.float32), np.zeros(0, np.int64), (), None)
        chosen = self._decision if rule is None else decision_rule(self.card, rule)
        try:
            return calibrate_gallery(self.calibration, data.embeddings, data.person_index, len(data.names),
                                     chosen, preset_thresholds=self.card.threshold_presets, overrides=data.thresholds)
        except ValueError as error:
            raise ModelError(f"model card {self.card.directory}: {error}") from None

    def matcher_for(self, data: GalleryMatrix | None, rule: DecisionRule | str | float | None = None, *,
                    calibrated: GalleryCalibration | None = None) -> Matcher:
        """A matcher deciding by ``rule`` (default: :attr:`decision`) over ``data``, as
        the live loop would (evaluation builds galleries this way); ``calibrated``: the
        result of :meth:`calibrate` for them, if already known."""
        # An index of its own (in memory, built here and now), so the live gallery's stays as it is.
        keeper = IndexKeeper(self.indexes.min_templates, self.indexes.candidates, background_from=2**62)
        return self._build(data, calibrated if calibrated is not None else self.calibrate(data, rule), keeper)

    def _build(self, data: GalleryMatrix | None, chosen: GalleryCalibration, keeper: IndexKeeper,
               location: Path | None = None, revision: int | None = None, current_revision=None) -> Matcher:
        if data is not None and len(data.embeddings):
            return build_matcher(data, chosen.thresholds, chosen.gallery_threshold, keeper=keeper, location=location,
                                 revision=revision, current_revision=current_revision)
        return Matcher.empty(self.card.embedding_dim, chosen.gallery_threshold)

    def _make(self, gallery: Gallery | None, revision: int | None, rule: DecisionRule,
              built: tuple | None) -> tuple[tuple, GalleryMatrix | None, GalleryCalibration, Matcher]:
        """What the matcher is built from (``(gallery, revision, rule, index generation)``),
        the gallery's matrix, its calibration and the matcher. The matrix is read again
        only when the gallery changed since ``built``, the calibration made again only
        when the rule changed too (not when only the index became ready)."""
        generation = self.indexes.generation  # before building: a later one means another rebuild
        same = built is not None and built[0] is gallery and built[1] == revision
        data = self._data if same else None if gallery is None else gallery.matrix(self.embedder.model_id)
        chosen = self._chosen if same and built[2] == rule and self._chosen is not None else self.calibrate(data, rule)
        path = getattr(gallery, "path", None)
        # The index file holds the embeddings in clear: none next to an encrypted or read-only gallery.
        keep = isinstance(path, Path) and not gallery.encrypted and not gallery.read_only
        matcher = self._build(data, chosen, self.indexes, index_path(path) if keep else None, revision,
                              gallery.revision if keep else None)
        logger.debug("gallery revision %s: %d people, %s -> threshold %.3f (%s)", revision, matcher.person_count,
                     rule.label, chosen.gallery_threshold, type(matcher).__name__)
        return (gallery, revision, rule, generation), data, chosen, matcher

    def _install(self, made: tuple) -> None:
        self._built_from, self._data, self._chosen, self._matcher = made

    def _refresh_later(self, gallery: Gallery, revision: int | None, rule: DecisionRule, built: tuple) -> None:
        """:meth:`_make` on this thread (a background one); the result replaces the
        matcher unless the gallery or the rule changed meanwhile; an error is raised by
        the next :meth:`matcher` call."""
        try:
            made = self._make(gallery, revision, rule, built)
        except Exception as error:  # noqa: BLE001 - handed to the live thread
            with self._lock:
                if self.gallery is gallery and self._decision == rule:  # not the error of a gallery swapped out
                    self._refresh_error = error
            return
        with self._lock:
            if self.gallery is gallery and self._decision == rule:
                self._install(made)

    @property
    def refreshing(self) -> bool:
        """Whether a large gallery's matcher is being rebuilt in the background."""
        return self._refresh is not None and self._refresh.is_alive()

    def wait_for_refresh(self, timeout: float | None = None) -> bool:
        """Wait until no rebuild of the matcher, nor of the search index, is running
        (and the matcher uses the index when one was being built); False on ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.indexes.wait(left)
            thread = self._refresh
            if thread is not None:
                thread.join(left)
            self.matcher()  # starts the rebuild that a finished one calls for, if any
            if not self.refreshing and not self.indexes.building:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def matcher(self) -> Matcher:
        """The matcher for the gallery as it is now (rebuilt only when it, the rule or
        the search index changed; for a large gallery on a background thread, the
        previous matcher serving until then)."""
        with self._lock:
            if self._refresh_error is not None:
                error, self._refresh_error = self._refresh_error, None
                raise error
            gallery = self.gallery
            built = self._built_from
            if self.refreshing and built is not None and built[0] is gallery:
                # Not even the revision: the rebuild reads the gallery, and would make this frame wait.
                return self._matcher
            revision = None if gallery is None else gallery.revision()
            # Another gallery object (or none) may share the old one's revision number.
            if built is not None and built[0] is gallery and built[1:] == (revision, self._decision, self.indexes.generation):
                return self._matcher
            large = self._data is not None and len(self._data.embeddings) >= self.background_from
            if built is not None and built[0] is gallery and large:
                if not self.refreshing:
                    self._refresh = threading.Thread(target=self._refresh_later, args=(gallery, revision, self._decision, built),
                                                     name="faceapp-matcher-refresh", daemon=True)
                    self._refresh.start()
                return self._matcher
            self._install(self._make(gallery, revision, self._decision, built))
            return self._matcher

    # -- stages -------------------------------------------------------------------
    def detect(self, image: np.ndarray, video: bool = False) -> list[Detection]:
        """The faces of a BGR uint8 frame (``video``: of a live stream, detected at the
        detector's working resolution; else a still photo, at its own)."""
        if self.frame_program is not None:
            return self.frame_program.detect(image, video)
        return self.detector.detect(image, video)

    @property
    def needs_chip(self) -> bool:
        """Whether the embedding model wants dlib's chip of each face too (the fused model)."""
        return bool(getattr(self.embedder, "needs_chip", False))

    def align(self, image: np.ndarray, detections: list[Detection]) -> list[AlignedFace]:
        """Each detected face of the BGR ``image`` aligned, its wide crop for storing (see
        :mod:`faceapp.vision.face_crop`), and cut as dlib's chip when :attr:`needs_chip`."""
        from faceapp.vision.face_crop import wide_crop

        if self.needs_chip:
            from faceapp.vision.dlib_align import dlib_chip

            return [AlignedFace(align_face(image, d.landmarks), d, dlib_chip(image, d.landmarks), wide_crop(image, d.landmarks))
                    for d in detections]
        return [AlignedFace(align_face(image, d.landmarks), d, wide=wide_crop(image, d.landmarks)) for d in detections]

    def embed(self, faces: list[AlignedFace]) -> np.ndarray:
        """float32 ``(len(faces), D)`` unit embeddings, all faces in one batch."""
        if not faces:
            return np.zeros((0, self.card.embedding_dim), np.float32)
        stacked = np.stack([f.image for f in faces])
        chips = None
        if self.needs_chip:
            if any(f.chip is None for f in faces):
                raise ValueError("the fused model needs each face's dlib chip (align with this recognizer)")
            chips = np.stack([f.chip for f in faces])
        return embed_faces(self.embedder, stacked, chips, self.flip)

    def process(self, image: np.ndarray, tracking: Tracking | None = None, video: bool | None = None) -> FrameResult:
        """Run every stage on one BGR uint8 ``(H, W, 3)`` frame. ``video`` (default: with
        ``tracking``): a frame of a live stream, detected at the working resolution.

        Without ``tracking`` every face is aligned, embedded and matched on its own. With
        a :class:`~faceapp.recognition.live.Tracking` (one per video stream), faces are
        followed across frames, only those that need it are embedded (all in one batch),
        and each face shows its track's voted name.
        """
        clock = _StageClock()
        detections = self.detect(image, tracking is not None if video is None else video)
        matcher = self.matcher()
        plan = tracking.plan(image, detections, matcher) if tracking is not None else None
        clock.lap("detect")
        rows = plan.needs if plan is not None else range(len(detections))
        if self.frame_program is not None and not self.flip:  # the warp and the network in one program
            clock.lap("align")
            faces, embeddings = self.frame_program.align_embed(image, [detections[row] for row in rows])
        else:
            faces = self.align(image, [detections[row] for row in rows])
            clock.lap("align")
            embeddings = self.embed(faces)
        clock.lap("embed")
        if plan is not None:
            results = tracking.decide(plan, detections, faces, embeddings, matcher, self.card.embedding_dim, self.card.same_face)
        else:
            matches = matcher.match(embeddings) if faces else []
            results = [FaceResult(f.detection, e, m, aligned=f) for f, e, m in zip(faces, embeddings, matches)]
        clock.lap("match")
        return FrameResult(tuple(results), clock.times(), (image.shape[1], image.shape[0]))


class _StageClock:
    """Milliseconds per stage, measured between consecutive laps."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self._ms[stage] = (now - self._last) * 1e3
        self._last = now

    def times(self) -> StageTimes:
        return StageTimes(**self._ms)
