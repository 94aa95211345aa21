"""The HLS master playlist, written from measured rendition results."""

from collections.abc import Sequence

from videotranscode.results import RenditionResult

# The first variant is what Safari starts with: the best rung that most connections sustain.
DEFAULT_START_BANDWIDTH = 2_500_000


def default_variant_index(variants: Sequence[RenditionResult]) -> int:
    """The highest rung whose average bandwidth is at most 2.5 Mb/s, else the lowest."""
    by_bandwidth = sorted(range(len(variants)), key=lambda i: variants[i].average_bandwidth)
    affordable = [
        i for i in by_bandwidth if variants[i].average_bandwidth <= DEFAULT_START_BANDWIDTH
    ]
    return affordable[-1] if affordable else by_bandwidth[0]


def _stream_inf(variant: RenditionResult) -> str:
    attributes = [
        f"BANDWIDTH={variant.bandwidth}",
        f"AVERAGE-BANDWIDTH={variant.average_bandwidth}",
        f"RESOLUTION={variant.width}x{variant.height}",
        f"FRAME-RATE={variant.frame_rate:.3f}",
        f'CODECS="{variant.codecs}"',
    ]
    return "#EXT-X-STREAM-INF:" + ",".join(attributes)


def build_master_playlist(variants: Sequence[RenditionResult]) -> str:
    """Master playlist: the default variant first, then the rest by ascending bandwidth."""
    if not variants:
        raise ValueError("a master playlist needs at least one variant")
    first = default_variant_index(variants)
    rest = sorted((v for i, v in enumerate(variants) if i != first), key=lambda v: v.bandwidth)
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in [variants[first], *rest]:
        lines += [_stream_inf(variant), variant.uri]
    return "\n".join(lines) + "\n"
