"""Resource limits and the content allow-lists.

Every bound is configurable so an agency can accept its own DVR's long exports, and so
tests can prove each bound with a tiny clip. The allow-lists are what real cameras,
DVRs and phones write; anything else is refused by what the bytes are, never by the
file name.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3

#: ffmpeg demuxer names we let ffmpeg/ffprobe use. Passed as ``-format_whitelist`` so
#: that probing itself can never pick the HLS, DASH, concat, image2 or any other
#: demuxer able to open further files or URLs named inside the data (threat: a
#: playlist or an ffconcat script renamed ``clip.mp4``). ``mov`` also matches the
#: mp4/m4a/3gp aliases of the same demuxer.
ALLOWED_FORMATS: frozenset[str] = frozenset(
    {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts", "mpeg", "flv"}
)

#: Codec names (as ffprobe reports them) of the video streams we decode.
ALLOWED_VIDEO_CODECS: frozenset[str] = frozenset(
    {"h264", "hevc", "mpeg2video", "mpeg1video", "mpeg4", "mjpeg", "vp8", "vp9", "av1", "h263"}
)

#: Codec names of the audio streams we decode. G.711 (pcm_mulaw/pcm_alaw) and G.726 come
#: from DVRs, AMR from old phones.
ALLOWED_AUDIO_CODECS: frozenset[str] = frozenset(
    {
        "aac",
        "mp3",
        "mp2",
        "ac3",
        "eac3",
        "opus",
        "vorbis",
        "flac",
        "alac",
        "pcm_mulaw",
        "pcm_alaw",
        "pcm_s16le",
        "pcm_s16be",
        "pcm_s24le",
        "pcm_u8",
        "adpcm_ima_wav",
        "adpcm_g726",
        "adpcm_g726le",
        "amr_nb",
        "amr_wb",
    }
)

#: The watermark is operator-supplied, but it is still a file parsed by ffmpeg.
ALLOWED_IMAGE_FORMATS: frozenset[str] = frozenset({"png_pipe", "jpeg_pipe"})
ALLOWED_IMAGE_CODECS: frozenset[str] = frozenset({"png", "mjpeg"})

#: Decoder names for the allowed codecs, passed as ``-codec_whitelist`` so that even
#: the stream analysis during probing never opens another decoder (threat: a rarely
#: used, less-audited decoder reached through a crafted stream header). Where a codec
#: has several decoders in a stock build, all of them are listed.
_DECODERS_BY_CODEC: dict[str, tuple[str, ...]] = {
    "av1": ("libdav1d", "av1", "libaom-av1"),
    "mp3": ("mp3float", "mp3"),
    "mp2": ("mp2float", "mp2"),
    "aac": ("aac", "aac_fixed"),
    "ac3": ("ac3", "ac3_fixed"),
    "opus": ("opus", "libopus"),
    "amr_nb": ("amrnb", "libopencore_amrnb"),
    "amr_wb": ("amrwb", "libopencore_amrwb"),
    "vp8": ("vp8", "libvpx"),
    "vp9": ("vp9", "libvpx-vp9"),
    "png": ("png",),
}


def decoder_whitelist(codecs: frozenset[str]) -> str:
    """The ``-codec_whitelist`` value (comma-separated decoder names) for ``codecs``."""
    names: set[str] = set()
    for codec in codecs:
        names.update(_DECODERS_BY_CODEC.get(codec, (codec,)))
    return ",".join(sorted(names))


@dataclass(frozen=True)
class Limits:
    """Bounds applied to every probe and transcode.

    ``memory_bytes`` is applied to the ffmpeg/ffprobe child as ``RLIMIT_AS`` (address
    space, so it counts thread stacks and allocator arenas, not only resident pages).
    One ffmpeg run may take ``timeout_base_s`` plus ``timeout_per_media_s`` seconds for
    every second of the clip it makes (see :meth:`run_timeout_s`), and is killed as
    :class:`Stalled` after ``stall_timeout_s`` in which it used no CPU, read nothing,
    wrote nothing and reported nothing. ``probe_timeout_s`` bounds one ffprobe run.
    ``heartbeat_interval_s`` is how often a busy run calls its heartbeat. ``nice`` is
    the children's CPU niceness (so the portal's own work on the same machine, taking
    tips above all, is not starved by a transcode).

    ``threads`` is each x264 encoder's thread count; 0 gives it ``encoder_threads``.
    It is always explicit because x264's output depends on it, and a count chosen from
    the machine's cores would make two workers write different bytes from the same
    command. The decoder and the filter graph always run one thread (see
    ``graph._input``). 1 holds a run to about one core.
    """

    max_file_bytes: int = 8 * GIB
    max_duration_s: float = 4 * 3600.0
    max_width: int = 7680
    max_height: int = 4320
    max_streams: int = 16
    timeout_base_s: float = 600.0
    timeout_per_media_s: float = 20.0
    stall_timeout_s: float = 60.0
    heartbeat_interval_s: float = 5.0
    probe_timeout_s: float = 60.0
    memory_bytes: int = 6 * GIB
    nice: int = 10
    threads: int = 0
    encoder_threads: int = 4
    #: ffprobe's analysis window. DVR exports often start with seconds of junk or a
    #: late first keyframe, so this is larger than ffmpeg's 5 MB / 5 s default.
    probesize_bytes: int = 50 * 1024 * 1024
    analyzeduration_s: float = 20.0

    def __post_init__(self) -> None:
        for name in (
            "max_file_bytes",
            "max_duration_s",
            "max_width",
            "max_height",
            "max_streams",
            "timeout_base_s",
            "stall_timeout_s",
            "heartbeat_interval_s",
            "probe_timeout_s",
            "memory_bytes",
            "probesize_bytes",
            "analyzeduration_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")
        if self.threads < 0:
            raise ValueError("Limits.threads must be 0 (automatic) or positive")
        if self.encoder_threads < 1:
            raise ValueError("Limits.encoder_threads must be positive")
        if self.timeout_per_media_s < 0:
            raise ValueError("Limits.timeout_per_media_s must not be negative")
        if not 0 <= self.nice <= 19:
            raise ValueError("Limits.nice must be 0..19")

    def run_timeout_s(self, media_duration_s: float) -> float:
        """Wall-clock limit of one ffmpeg run making ``media_duration_s`` of output."""
        return self.timeout_base_s + self.timeout_per_media_s * max(0.0, media_duration_s)

    @property
    def x264_threads(self) -> int:
        """The thread count every x264 encoder gets: always explicit (see the class)."""
        return self.threads or self.encoder_threads


DEFAULT_LIMITS = Limits()
