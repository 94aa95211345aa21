"""Audio as its own renditions: one audio-only rendition per audio stream of the source,
encoded once and shared by every video rung through an `EXT-X-MEDIA:TYPE=AUDIO` group (as
Apple's HLS authoring specification recommends), never once per rung.

The facts here are shared by the worker (which encodes and measures them) and the operator
(which plans one Job per audio stream): the renditions' names, their readable names, the
language tags, which stream is the default, and the encoding each gets.
"""

import re
from collections.abc import Sequence

from videotranscode._model import CamelModel
from videotranscode.results import AudioTrackInfo

AUDIO_GROUP_ID = "aac"  # the master's one audio group: every variant refers to it
AUDIO_CODEC = "aac"  # AAC-LC (`mp4a.40.2`), which every HLS player decodes
AUDIO_CODECS = "mp4a.40.2"  # its RFC 6381 name, as a master lists it before it is measured
AUDIO_SAMPLE_RATE = 48_000  # Hz; 44.1 kHz and other rates are resampled
AUDIO_MAX_CHANNELS = 2  # surround is downmixed to stereo; mono stays mono
AUDIO_BITRATE = 128_000  # bits/s for stereo, as the rung spec's audioBitrate default
MONO_AUDIO_BITRATE = 64_000  # the same bits per channel for mono
AUDIO_NAME_PATTERN = r"^audio-[0-9]{1,2}$"  # fits a Job name suffix and an output folder

# ISO 639-2 (bibliographic and terminology codes) → ISO 639-1, the shortest tag BCP 47 allows.
_ISO_639_1 = {
    "ara": "ar", "cat": "ca", "ces": "cs", "cze": "cs", "chi": "zh", "zho": "zh", "dan": "da",
    "deu": "de", "ger": "de", "dut": "nl", "nld": "nl", "ell": "el", "gre": "el", "eng": "en",
    "fin": "fi", "fra": "fr", "fre": "fr", "heb": "he", "hin": "hi", "hun": "hu", "ind": "id",
    "ita": "it", "jpn": "ja", "kor": "ko", "nob": "nb", "nor": "no", "pol": "pl", "por": "pt",
    "ron": "ro", "rum": "ro", "rus": "ru", "spa": "es", "swe": "sv", "tha": "th", "tur": "tr",
    "ukr": "uk", "vie": "vi",
}  # fmt: skip
# The language's own name for itself, as players list the tracks.
_LANGUAGE_NAMES = {
    "ar": "العربية", "ca": "Català", "cs": "Čeština", "da": "Dansk", "de": "Deutsch",
    "el": "Ελληνικά", "en": "English", "es": "Español", "fi": "Suomi", "fr": "Français",
    "he": "עברית", "hi": "हिन्दी", "hu": "Magyar", "id": "Bahasa Indonesia", "it": "Italiano",
    "ja": "日本語", "ko": "한국어", "nb": "Norsk bokmål", "nl": "Nederlands", "no": "Norsk",
    "pl": "Polski", "pt": "Português", "ro": "Română", "ru": "Русский", "sv": "Svenska",
    "th": "ไทย", "tr": "Türkçe", "uk": "Українська", "vi": "Tiếng Việt", "zh": "中文",
}  # fmt: skip
_NO_LANGUAGE = {"und", "mis", "zxx"}  # undetermined, uncoded, no linguistic content
_TAG = re.compile(r"^[a-z]{2,8}(-[a-z0-9]{1,8})*$")
_UNQUOTABLE = re.compile(r'[\x00-\x1f\x7f"]')  # NAME is a quoted string: no quote, no CR/LF
MAX_NAME_CHARS = 64


def is_audio_rendition(name: str) -> bool:
    """Whether a rendition of the ladder is an audio rendition (no video rung may be named
    so: see `RenditionSpec`)."""
    return re.match(AUDIO_NAME_PATTERN, name) is not None


def audio_rendition_name(index: int) -> str:
    """The rendition of audio stream `index` (0-based among the source's audio streams):
    `audio-0`, `audio-1`, ...; its output folder and its Job's name suffix."""
    if not 0 <= index < 100:
        raise ValueError(f"audio stream index out of range: {index}")
    return f"audio-{index}"


def language_tag(raw: str | None) -> str | None:
    """A stream's `language` tag (ISO 639-2 like `eng`, or already BCP 47 like `en-US`) as a
    lowercase BCP 47 tag with the shortest primary subtag (`en`, `de`, `pt-br`); None when it
    is absent, undetermined (`und`) or not a language tag."""
    if raw is None:
        return None
    tag = raw.strip().lower().replace("_", "-")
    if not _TAG.match(tag):
        return None
    primary, _, rest = tag.partition("-")
    if primary in _NO_LANGUAGE:
        return None
    primary = _ISO_639_1.get(primary, primary)
    return f"{primary}-{rest}" if rest else primary


def _clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    text = " ".join(_UNQUOTABLE.sub(" ", title).split())[:MAX_NAME_CHARS].strip()
    return text or None


def audio_display_names(tracks: Sequence[AudioTrackInfo]) -> list[str]:
    """A readable, unique NAME for each track, in order: its title, else its language's own
    name (English, Deutsch, ...), else `Audio <n>` (with the language tag when it has one
    the table lacks). A name already taken gets ` (2)`, ` (3)`, ..."""
    names: list[str] = []
    for number, track in enumerate(tracks, start=1):
        language = track.language
        known = None if language is None else _LANGUAGE_NAMES.get(language.partition("-")[0])
        base = _clean_title(track.title) or known
        if base is None:
            base = f"Audio {number}" if language is None else f"Audio {number} ({language})"
        name, copy = base, 1
        while name in names:
            copy += 1
            name = f"{base} ({copy})"
        names.append(name)
    return names


def default_audio_index(tracks: Sequence[AudioTrackInfo]) -> int | None:
    """Position of the group's DEFAULT=YES track: the first the source marks default, else
    the first; None without tracks."""
    if not tracks:
        return None
    return next((i for i, track in enumerate(tracks) if track.default), 0)


class AudioRendition(CamelModel):
    """One audio-only rendition the operator runs a Job for (`AudioArgs`), planned from the
    probed source by `plan_audio_renditions`."""

    name: str
    """Rendition name and output folder, e.g. audio-0."""
    stream: int
    """The audio stream, 0-based among the source's audio streams."""
    bitrate: int
    """AAC bitrate, bits per second."""
    channels: int
    """Output channels: the source's, at most 2."""
    language: str | None = None
    """BCP 47 language tag, e.g. en; none when the source does not say."""
    display_name: str
    """The readable NAME players list, unique within the source."""
    default: bool = False
    """The master's DEFAULT=YES track."""


def output_channels(source_channels: int) -> int:
    """Mono stays mono; stereo and surround become stereo (unknown: stereo)."""
    return 1 if source_channels == 1 else AUDIO_MAX_CHANNELS


def audio_bitrate(channels: int, stereo_bitrate: int = AUDIO_BITRATE) -> int:
    """The bitrate of an output with `channels`: `stereo_bitrate`, halved for mono."""
    return stereo_bitrate if channels > 1 else max(16_000, stereo_bitrate // 2)


def plan_audio_renditions(
    tracks: Sequence[AudioTrackInfo], stereo_bitrate: int = AUDIO_BITRATE
) -> list[AudioRendition]:
    """One audio rendition per audio stream of the source (`SourceInfo.audio_streams`), in
    order; empty for a silent source."""
    names = audio_display_names(tracks)
    default = default_audio_index(tracks)
    plans = []
    for position, (track, display_name) in enumerate(zip(tracks, names, strict=True)):
        channels = output_channels(track.channels)
        plans.append(
            AudioRendition(
                name=audio_rendition_name(track.index),
                stream=track.index,
                bitrate=audio_bitrate(channels, stereo_bitrate),
                channels=channels,
                language=track.language,
                display_name=display_name,
                default=position == default,
            )
        )
    return plans
