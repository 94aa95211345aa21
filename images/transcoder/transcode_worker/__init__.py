"""hlsforge's transcoder worker: probes a source and encodes HLS renditions with FFmpeg."""
