from transcode_worker.cli import main

raise SystemExit(main())
