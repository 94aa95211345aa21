"""hlsforge's Kopf operator: VideoTranscode resources → probe and rendition Jobs → HLS."""
