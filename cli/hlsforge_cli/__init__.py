"""`hlsforge`: the command-line client of the hlsforge API."""
