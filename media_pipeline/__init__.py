"""Tattletale's media pipeline: hostile-safe probe, edit and transcode, and storage.

No Flask, portal or database import: the portal's jobs and ``python -m media_pipeline``
use the same functions.
"""

from .errors import (
    Cancelled,
    HashMismatch,
    InvalidKey,
    InvalidPlan,
    MediaPipelineError,
    ObjectNotFound,
    PipelineError,
    Rejected,
    Stalled,
    StorageError,
    TimedOut,
)
from .hashing import HashingReader, hash_file, hash_stream
from .limits import DEFAULT_LIMITS, Limits
from .manifest import Manifest, OutputFile, SourceRecord
from .pipeline import make_proxy, process, store_outputs
from .plan import AudioRange, BlurRegion, Caption, EditPlan, Keyframe, Track, Watermark
from .probe import AudioStream, MediaInfo, VideoStream, probe
from .profiles import (
    DEFAULT_PROFILES,
    PROXY,
    PosterProfile,
    SpriteProfile,
    VideoProfile,
    profiles_by_name,
)
from .storage import (
    LocalStore,
    ObjectStat,
    S3Store,
    Store,
    StoredObject,
    content_disposition,
    store_from_url,
    validate_key,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_PROFILES",
    "PROXY",
    "AudioRange",
    "AudioStream",
    "BlurRegion",
    "Cancelled",
    "Caption",
    "EditPlan",
    "HashMismatch",
    "HashingReader",
    "InvalidKey",
    "InvalidPlan",
    "Keyframe",
    "Limits",
    "LocalStore",
    "Manifest",
    "MediaInfo",
    "MediaPipelineError",
    "ObjectNotFound",
    "ObjectStat",
    "OutputFile",
    "PipelineError",
    "PosterProfile",
    "Rejected",
    "S3Store",
    "SourceRecord",
    "SpriteProfile",
    "Stalled",
    "Store",
    "Track",
    "StorageError",
    "StoredObject",
    "TimedOut",
    "VideoProfile",
    "VideoStream",
    "Watermark",
    "content_disposition",
    "hash_file",
    "hash_stream",
    "make_proxy",
    "probe",
    "process",
    "profiles_by_name",
    "store_from_url",
    "store_outputs",
    "validate_key",
]
