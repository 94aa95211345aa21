"""The hlsforge API: auth, direct uploads, the video catalogue, playback and live progress.

Run it with `hlsforge-api`, or `uvicorn transcode_api.main:app`.
"""
