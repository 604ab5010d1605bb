from vinpaint.main import main

raise SystemExit(main())
