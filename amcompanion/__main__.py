from amcompanion.cli import main

raise SystemExit(main())
