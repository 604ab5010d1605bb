from vinpaint.cli.main import main

raise SystemExit(main())
