"""`python -m hlsforge_cli`: the `hlsforge` command."""

from hlsforge_cli.main import main

main()
